package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// python is Debian's interpreter, where python3-numpy installs (make test
// installs it: scripts/install-numpy).
const python = "/usr/bin/python3"

// needNumpy skips without numpy, unless DSX_REQUIRE_NUMPY is set (make
// test sets it), where a missing numpy fails the test.
func needNumpy(t *testing.T) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import numpy").CombinedOutput()
	if err == nil {
		return
	}
	msg := "no numpy for " + python + " (scripts/install-numpy installs Debian's python3-numpy): " + string(bytes.TrimSpace(out))
	if os.Getenv("DSX_REQUIRE_NUMPY") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// readmeSnippet returns the README's numpy program, the python block after
// the numpy-snippet marker.
func readmeSnippet(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- numpy-snippet")
	if i < 0 {
		t.Fatal("README.md has no <!-- numpy-snippet --> marker")
	}
	s = s[i:]
	start := strings.Index(s, "```python\n")
	end := strings.Index(s[start+10:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no ```python block after the numpy-snippet marker")
	}
	code := s[start+10 : start+10+end]
	if n := strings.Count(strings.TrimSpace(code), "\n") + 1; n > 11 {
		t.Errorf("the snippet has %d lines; the README promises about ten", n)
	}
	return code
}

// TestNumpyRoundTrip: numpy writes features (float32 for training, float64
// for prediction) and labels with np.save, dsx trains on them, and the
// README's numpy snippet predicts from the saved model; its classes must
// equal dsx predict's row for row, and its probabilities agree.
func TestNumpyRoundTrip(t *testing.T) {
	needNumpy(t)
	snippet := readmeSnippet(t)
	dir := t.TempDir()
	py := func(code string) {
		t.Helper()
		cmd := exec.Command(python, "-c", code)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("python: %v\n%s\n--- program:\n%s", err, out, code)
		}
	}
	// Eight classes in 32 dimensions, features with offsets and scales the
	// scaler must undo.
	py(`
import numpy as np
rng = np.random.default_rng(12)
T, N = 8, 32
centres = rng.normal(0, 1.5, (T, N))
def blobs(rows):
    y = rng.integers(0, T, rows)
    x = centres[y] + rng.normal(0, 1, (rows, N))
    return (x * np.arange(1, N + 1) + 100 * np.arange(N)), y
x, y = blobs(4000)
np.save('x.npy', x.astype(np.float32)); np.save('y.npy', y)
xt, yt = blobs(1000)
np.save('xt.npy', xt.astype(np.float32)); np.save('yt.npy', yt.astype(np.int32))
np.save('features.npy', blobs(2000)[0])   # float64, no labels
`)
	p := func(name string) string { return filepath.Join(dir, name) }
	code, _, stderr := dsx(t, "train", "--train", p("x.npy"), "--train-labels", p("y.npy"), "--test", p("xt.npy"), "--test-labels", p("yt.npy"),
		"--epochs", "5", "--batch", "128", "--lr", "0.01", "--device", "cpu", "--out", p("model.safetensors"))
	if code != 0 {
		t.Fatalf("train exited %d: %s", code, stderr)
	}
	for _, args := range [][]string{{"--out", p("dsx_pred.npy")}, {"--proba", "--out", p("dsx_proba.npy")}} {
		if code, _, stderr := dsx(t, append([]string{"predict", "--model", p("model.safetensors"), "--test", p("features.npy"), "--device", "cpu"}, args...)...); code != 0 {
			t.Fatalf("predict %v exited %d: %s", args, code, stderr)
		}
	}
	// The snippet as the README has it, then what the test compares: its
	// classes and probabilities, and for each row the float64 gap between
	// the two largest logits (a tie within float32 rounding may go either
	// way; nothing else may differ).
	py(snippet + `
assert pred.shape == (x.shape[0],)
np.save('np_pred.npy', pred.astype(np.int64)); np.save('np_proba.npy', p.astype(np.float32))
z64 = ((x.astype(np.float64) - t['scaler.mean']) / t['scaler.std']) @ t['W'].astype(np.float64) + t['b']
top2 = np.sort(z64, axis=1)[:, -2:]
np.save('gap.npy', top2[:, 1] - top2[:, 0])
`)
	_, _, dsxPred := readNPY(t, p("dsx_pred.npy"))
	_, _, npPred := readNPY(t, p("np_pred.npy"))
	_, _, dsxProba := readNPY(t, p("dsx_proba.npy"))
	_, _, npProba := readNPY(t, p("np_proba.npy"))
	_, _, gap := readNPY(t, p("gap.npy"))
	const rows, T = 2000, 8
	if len(dsxPred) != 8*rows || len(npPred) != 8*rows || len(dsxProba) != 4*rows*T || len(npProba) != 4*rows*T {
		t.Fatalf("sizes: dsx %d, numpy %d, probabilities %d and %d", len(dsxPred), len(npPred), len(dsxProba), len(npProba))
	}
	ties, worst := 0, 0.0
	for i := range rows {
		a, b := binary.LittleEndian.Uint64(dsxPred[8*i:]), binary.LittleEndian.Uint64(npPred[8*i:])
		if a != b {
			// Logits of about 10 agree to float32 rounding (~1e-6); a gap
			// below 1e-4 is a tie that summation order may break either way.
			if g := math.Float64frombits(binary.LittleEndian.Uint64(gap[8*i:])); g > 1e-4 {
				t.Errorf("row %d: dsx predicts %d, numpy %d, with the top two logits %g apart", i, a, b, g)
			}
			ties++
		}
		for c := range T {
			x := math.Float32frombits(binary.LittleEndian.Uint32(dsxProba[4*(i*T+c):]))
			y := math.Float32frombits(binary.LittleEndian.Uint32(npProba[4*(i*T+c):]))
			worst = math.Max(worst, math.Abs(float64(x-y)))
		}
	}
	// Both compute in float32 from the same scaled inputs; the products
	// differ only in summation order: probabilities agree to ~1e-6.
	if worst > 1e-5 {
		t.Errorf("probabilities differ by up to %g", worst)
	}
	t.Logf("%d rows: %d predictions differ (each a near-tie), probabilities within %.1e", rows, ties, worst)
}
