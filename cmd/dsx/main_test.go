package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/data"
	"dsx/model"
)

// dsx runs the command in-process and returns its exit code and output.
func dsx(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func fashionDir(t *testing.T) string {
	for _, d := range data.DefaultDirs() {
		if _, err := os.Stat(filepath.Join(d, "train-labels-idx1-ubyte.gz")); err == nil {
			return d
		}
	}
	t.Skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist; make test installs it)")
	return ""
}

// TestTrainFashionMNIST trains briefly on the real data and checks the
// accuracy, the JSON report, the saved model and eval's agreement with it.
func TestTrainFashionMNIST(t *testing.T) {
	dir := fashionDir(t)
	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, stdout, stderr := dsx(t, "train", "--data", dir, "--epochs", "2", "--device", "cpu", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("train exited %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "device cpu") {
		t.Errorf("no line saying which device ran: %q", stderr)
	}
	var rep trainReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("train --json: %v\n%s", err, stdout)
	}
	// Two epochs of softmax regression reach about 0.83; 0.80 leaves room
	// for shuffling order yet fails a broken gradient (a random guess is 0.10).
	if rep.TestAccuracy < 0.80 || rep.Epochs != 2 || rep.Device != "cpu" || rep.ExamplesPerSecond <= 0 {
		t.Errorf("report %+v", rep)
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.N != 784 || m.T != 10 || len(m.Classes) != 10 || m.Classes[9] != "Ankle boot" {
		t.Errorf("model N=%d T=%d classes=%v", m.N, m.T, m.Classes)
	}
	code, stdout, stderr = dsx(t, "eval", "--data", dir, "--model", out, "--device", "cpu", "--json")
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, stderr)
	}
	var ev struct {
		Acc float64 `json:"test_accuracy"`
	}
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	// The same parameters on the same data: the same predictions, up to
	// float32 ties (none expected in 10000 rows).
	if d := ev.Acc - rep.TestAccuracy; d > 1e-4 || d < -1e-4 {
		t.Errorf("eval accuracy %v, train reported %v", ev.Acc, rep.TestAccuracy)
	}
}

func writeCSV(t *testing.T, name string, rows []string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCSVAndPredict trains on a tiny separable CSV problem and predicts it.
func TestCSVAndPredict(t *testing.T) {
	var rows []string
	for i := 0; i < 60; i++ {
		c := i % 3
		rows = append(rows, strings.Join([]string{[]string{"0", "1", "2"}[c], []string{"5,0", "0,5", "-5,-5"}[c]}, ","))
	}
	train := writeCSV(t, "train.csv", rows)
	test := writeCSV(t, "test.csv", rows[:9])
	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, stderr := dsx(t, "train", "--train", train, "--test", test, "--epochs", "30", "--batch", "8", "--lr", "0.05", "--device", "cpu", "--out", out)
	if code != 0 {
		t.Fatalf("train exited %d: %s", code, stderr)
	}
	code, stdout, stderr := dsx(t, "predict", "--test", test, "--model", out, "--device", "cpu")
	if code != 0 {
		t.Fatalf("predict exited %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 10 {
		t.Fatalf("predict printed %d lines, want header + 9:\n%s", len(lines), stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if f[1] != f[3] {
			t.Errorf("separable row mispredicted: %s", l)
		}
	}
}

// TestErrors checks that bad input gives a clear message and the right exit
// code, never a panic.
func TestErrors(t *testing.T) {
	good := writeCSV(t, "good.csv", []string{"0,1,2", "1,3,4"})
	bad := writeCSV(t, "bad.csv", []string{"0,1,2", "1,NaN,4"})
	short := writeCSV(t, "short.csv", []string{"0,1", "1,3"})
	corrupt := filepath.Join(t.TempDir(), "corrupt.safetensors")
	os.WriteFile(corrupt, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{not json}      "), 0o644)
	model3 := filepath.Join(t.TempDir(), "m3.safetensors")
	if err := model.Save(model3, &model.Model{W: make([]float32, 9), B: make([]float32, 3), N: 3, T: 3}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"train", "--device", "tpu", "--train", good, "--test", good}, 2, "--device"},
		{[]string{"train", "--device", "cpu", "--data", "/nonexistent"}, 1, "/nonexistent"},
		{[]string{"train", "--device", "cpu", "--train", bad, "--test", good}, 1, "bad.csv:2"},
		{[]string{"train", "--device", "cpu", "--train", good, "--test", good, "--label-smoothing", "2"}, 2, "label smoothing"},
		{[]string{"train", "--device", "cpu", "--train", good, "--test", good, "--class-weights", "1,x"}, 2, "class-weights"},
		{[]string{"train", "--device", "cpu", "--train", good, "--test", short}, 1, "features"},
		{[]string{"eval", "--device", "cpu", "--model", corrupt, "--test", good}, 1, "corrupt.safetensors"},
		{[]string{"eval", "--device", "cpu", "--model", model3, "--test", good}, 1, "features"},
		{[]string{"eval", "--device", "cpu", "--test", good}, 2, "--model"},
		{[]string{"bench", "--device", "cpu", "--shapes", "4x4"}, 2, "BxNxT"},
	} {
		code, _, stderr := dsx(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("dsx %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
}

// TestDeviceCUDAWithoutGPU: --device cuda is an error with a non-zero exit
// where no GPU is usable (in the gpu build on a GPU machine it trains).
func TestDeviceCUDAWithoutGPU(t *testing.T) {
	if b, err := backend.Get("cuda"); err == nil && b.Available() == nil {
		t.Skip("a GPU is usable here: --device cuda trains")
	}
	good := writeCSV(t, "good.csv", []string{"0,1,2", "1,3,4"})
	code, _, stderr := dsx(t, "train", "--device", "cuda", "--train", good, "--test", good, "--out", filepath.Join(t.TempDir(), "m"))
	if code != 1 || !strings.Contains(stderr, "--device cuda") || !strings.Contains(stderr, "unavailable") {
		t.Errorf("exit %d, stderr %q; want exit 1 saying --device cuda is unavailable", code, stderr)
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"train", "eval", "predict", "devices", "bench"} {
		code, stdout, _ := dsx(t, cmd, "--help")
		if code != 0 || !strings.Contains(stdout, "usage: dsx "+cmd) {
			t.Errorf("dsx %s --help: exit %d, %q", cmd, code, stdout)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	code, stdout, stderr := dsx(t, "bench", "--device", "cpu", "--shapes", "64x32x10,16x8x1000", "--steps", "3", "--warmup", "1", "--json")
	if code != 0 {
		t.Fatalf("bench exited %d: %s", code, stderr)
	}
	var recs []benchRecord
	if err := json.Unmarshal([]byte(stdout), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].T != 1000 || recs[0].MsPerStep <= 0 || recs[0].GFlops <= 0 || recs[0].Device != "cpu" {
		t.Errorf("records %+v", recs)
	}
}
