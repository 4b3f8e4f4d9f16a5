package benchdata

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func digest32[E float32 | int32](v []E) string {
	h := sha256.New()
	b := make([]byte, 4)
	for _, x := range v {
		var u uint32
		switch x := any(x).(type) {
		case float32:
			u = math.Float32bits(x)
		case int32:
			u = uint32(x)
		}
		binary.LittleEndian.PutUint32(b, u)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestMatchesPython draws the same shapes with bench/peers/benchdata.py
// (numpy; and PyTorch on the CPU where it is installed) and requires the
// same bits: the peers time the step on exactly dsx's inputs.
func TestMatchesPython(t *testing.T) {
	py := "/usr/bin/python3"
	script, _ := filepath.Abs("../../bench/peers/benchdata.py")
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		if os.Getenv("DSX_REQUIRE_NUMPY") != "" {
			t.Fatalf("DSX_REQUIRE_NUMPY is set but %s cannot import numpy: %v", py, err)
		}
		t.Skipf("%s cannot import numpy (make numpy installs it): %v", py, err)
	}
	engines := [][]string{nil}
	if exec.Command(py, "-c", "import torch").Run() == nil {
		engines = append(engines, []string{"--torch"})
	} else {
		t.Logf("PyTorch not installed: checking numpy only")
	}
	// Awkward sizes: T not a power of two, a T whose ⌊log₂⌋ octave
	// overflows it, N = 2 (one noise feature), B = 1.
	shapes := [][3]int{{8, 16, 50}, {3, 2, 1000}, {1, 37, 129}, {5, 9, 2}}
	var list []string
	for _, sh := range shapes {
		list = append(list, fmt.Sprintf("%dx%dx%d", sh[0], sh[1], sh[2]))
	}
	for _, kind := range []Kind{Random, LM} {
		for _, eng := range engines {
			args := append([]string{script, "--kind", kind.String(), "--shapes", strings.Join(list, ",")}, eng...)
			out, err := exec.Command(py, args...).Output()
			if err != nil {
				t.Fatalf("%v %v: %v", kind, eng, err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(shapes) {
				t.Fatalf("%v %v: %d lines for %d shapes: %s", kind, eng, len(lines), len(shapes), out)
			}
			for i, sh := range shapes {
				name := fmt.Sprintf("%v/%s%v", kind, list[i], eng)
				in, err := Generate(kind, sh[0], sh[1], sh[2], 42)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]string{"x": digest32(in.X), "W": digest32(in.W), "y": digest32(in.Y)}
				var got map[string]any
				if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
					t.Fatalf("%s: %v: %s", name, err, lines[i])
				}
				for _, k := range []string{"x", "W", "y"} {
					if got[k] != want[k] {
						t.Errorf("%s: %s differs from Go's: python's first values %v, Go's x %v W %v y %v",
							name, k, got[k+"0"], in.X[:min(4, len(in.X))], in.W[:min(4, len(in.W))], in.Y[:min(4, len(in.Y))])
					}
				}
			}
		}
	}
}

// rowStats returns the mean softmax entropy and cross-entropy of x·W
// against y, in float64.
func rowStats(in *Inputs) (entropy, loss float64) {
	z := make([]float64, in.B*in.T)
	for b := 0; b < in.B; b++ {
		for k := 0; k < in.N; k++ {
			xv := float64(in.X[b*in.N+k])
			for j, w := range in.W[k*in.T : (k+1)*in.T] {
				z[b*in.T+j] += xv * float64(w)
			}
		}
	}
	loss, entropy = RowStats(z, in.T, func(r int) int { return int(in.Y[r]) })
	return entropy, loss
}

// TestDistributions checks what the package doc promises: random inputs
// have a nearly uniform softmax (entropy within 2 % of log T); LM inputs
// have an LLM's few nats of entropy and loss, the targets spread over the
// frequency octaves, and most softmax entries below CCE's filter
// threshold. The bounds are loose (a sample of 64 rows), the gaps between
// the kinds are not.
func TestDistributions(t *testing.T) {
	const B, N, T = 64, 512, 8192
	r, err := Generate(Random, B, N, T, 42)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := rowStats(r); h < 0.98*math.Log(T) {
		t.Errorf("random inputs: mean entropy %.3f nats, want ≥ 0.98·log T = %.3f", h, 0.98*math.Log(T))
	}
	lm, err := Generate(LM, B, N, T, 42)
	if err != nil {
		t.Fatal(err)
	}
	h, l := rowStats(lm)
	t.Logf("lm inputs %d×%d×%d: mean entropy %.2f nats, mean loss %.2f nats", B, N, T, h, l)
	if h < 1 || h > 4 {
		t.Errorf("lm inputs: mean entropy %.2f nats, want a few (1 to 4)", h)
	}
	if l < 1 || l > 4 {
		t.Errorf("lm inputs: mean loss %.2f nats, want a few (1 to 4)", l)
	}
	octaves := map[int]bool{}
	p := LMParams(N, T)
	q := modInverse(p.P%T, T)
	for _, y := range lm.Y {
		r := int(uint64(y) * uint64(q) % T)
		octaves[int(math.Log2(float64(r+1)))] = true
	}
	if len(octaves) < 8 {
		t.Errorf("lm targets fall in %d frequency octaves of 14, want most", len(octaves))
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, c := range []struct {
		kind    Kind
		B, N, T int
	}{{Random, 0, 1, 1}, {LM, 4, 1, 10}, {Random, 1 << 20, 1 << 12, 2}, {LM, 2, 1 << 16, 1 << 16}} {
		if _, err := Generate(c.kind, c.B, c.N, c.T, 1); err == nil {
			t.Errorf("Generate(%v, %d, %d, %d): no error", c.kind, c.B, c.N, c.T)
		}
	}
	if _, err := ParseKind("zipf"); err == nil {
		t.Error("ParseKind(zipf): no error")
	}
}
