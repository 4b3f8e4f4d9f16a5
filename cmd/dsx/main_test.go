package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/kit"
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
	if rep.TestAccuracy == nil || *rep.TestAccuracy < 0.80 || rep.Epochs != 2 || rep.Device != "cpu" || rep.ExamplesPerSecond <= 0 {
		t.Errorf("report %+v", rep)
	}
	if d := rep.TrainData; d == nil || d.Format != "idx" || d.RowsRead != 60000 || d.LoadSeconds <= 0 || rep.TestData.RowsRead != 10000 {
		t.Errorf("train_data %+v, test_data %+v", rep.TrainData, rep.TestData)
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
	if d := ev.Acc - *rep.TestAccuracy; d > 1e-4 || d < -1e-4 {
		t.Errorf("eval accuracy %v, train reported %v", ev.Acc, *rep.TestAccuracy)
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
	big := writeCSV(t, "big.csv", []string{"0,1,2", "1000000,3,4"})
	names2 := writeCSV(t, "names.txt", []string{"a", "b"})
	npyX := writeNPY(t, filepath.Join(t.TempDir(), "x.npy"), []int{2, 2}, []float32{1, 2, 3, 4})
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
		{[]string{"train", "--device", "cpu", "--train", big, "--test", good}, 1, "label 1000000 would make 1000001 classes: too many classes to infer (more than 100000 without a class count); if the labels are right, give --classes T"},
		{[]string{"train", "--device", "cpu", "--train", good, "--test", good, "--classes", "1"}, 1, "label 1 out of range [0, 1)"},
		{[]string{"train", "--device", "cpu", "--train", good, "--test", good, "--classes", "3", "--class-names", names2}, 2, "--classes 3 but " + names2 + " names 2 classes"},
		{[]string{"predict", "--device", "cpu", "--model", model3, "--test", good, "--out", "p.txt"}, 2, "the extension says the format"},
		{[]string{"predict", "--device", "cpu", "--model", model3, "--test", good, "--out", "p.npy", "--top", "2", "--proba"}, 2, "a .npy file holds one array"},
		{[]string{"train", "--device", "cpu", "--train", npyX, "--test", npyX}, 1, "a .npy file holds one array, the features; the labels come in a second file (a .npy array of integers or IDX labels): give it with --train-labels FILE"},
		{[]string{"predict", "--device", "cpu", "--model", model3, "--test", good, "--top", "4"}, 2, "--top 4: the model has 3 classes"},
	} {
		code, _, stderr := dsx(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("dsx %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
}

// TestUsageBeforeDevice: a bad command line is a usage error (exit 2),
// found before the device is chosen or the GPU probed (no device line).
func TestUsageBeforeDevice(t *testing.T) {
	good := writeCSV(t, "good.csv", []string{"0,1,2", "1,3,4"})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--test", good}, "--model FILE is required"},
		{[]string{"predict", "--test", good}, "--model FILE is required"},
		{[]string{"train", "--optimizer", "rmsprop"}, `optimizer "rmsprop": want sgd or adam`},
		{[]string{"train", "--lr", "-1"}, "--lr -1: want a finite value > 0"},
		{[]string{"train", "--lr", "NaN"}, "--lr NaN"},
		{[]string{"train", "--optimizer", "sgd", "--momentum", "-0.5"}, "momentum -0.5"},
		{[]string{"train", "--weight-decay", "-1"}, "weight decay -1"},
		{[]string{"train", "--label-smoothing", "2"}, "label smoothing"},
		{[]string{"train", "--reduction", "avg"}, "--reduction"},
		{[]string{"train", "--ignore-index", "x"}, `flag --ignore-index: "x" is not an integer`},
		{[]string{"train", "--nope"}, "flag provided but not defined: --nope"},
		{[]string{"train", "--classes", "-2"}, "--classes -2"},
		{[]string{"train", "--out", ""}, "--out FILE is empty"},
		{[]string{"train", "--train", good, "--test-features-tensor", "e"}, "--test-features-tensor and --test-labels-tensor name tensors of a --test safetensors file"},
		{[]string{"train", "--labels-tensor", "c"}, "--features-tensor and --labels-tensor name tensors of a --train safetensors file"},
		{[]string{"eval", "--model", "m", "--features-tensor", "e"}, "name tensors of a --test safetensors file"},
		{[]string{"eval", "--model", "m", "--test-labels", good}, "--test-labels without --test"},
		{[]string{"predict", "--model", "m", "--top", "-1"}, "--top -1"},
		{[]string{"train", "--train", good, "--classes", "3", "--class-weights", "1,2"}, "2 class weights for 3 classes"},
		{[]string{"bench", "--device", "cpu,tpu", "--shapes", "8x8x8"}, `--device "tpu": want auto, cpu or cuda`},
		{[]string{"bench", "--shapes", "8x8"}, "is not BxNxT"},
		{[]string{"plan", "--shape", "8x8x8", "--xent", "fusde"}, "--xent"},
	} {
		code, stdout, stderr := dsx(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || deviceLine(stderr) || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("dsx %s: exit %d, stdout %q, stderr %q; want exit 2, one line mentioning %q, no device line",
				strings.Join(c.args, " "), code, stdout, stderr, c.want)
		}
	}
	// Where bench's plot goes is checked before the device is chosen.
	code, _, stderr := dsx(t, "bench", "--shapes", "8x8x8", "--plot", filepath.Join(t.TempDir(), "no", "p.png"))
	if code != 1 || !strings.Contains(stderr, "--plot") || deviceLine(stderr) {
		t.Errorf("bench --plot into a missing folder: exit %d, stderr %q; want exit 1 before any device line", code, stderr)
	}
}

// TestNoBuildGPUSuggestionWithoutDriver: building dsx-gpu is suggested only
// where an NVIDIA driver could run it.
func TestNoBuildGPUSuggestionWithoutDriver(t *testing.T) {
	if nvidiaDriver() {
		t.Skip("this machine has an NVIDIA driver: the suggestion is right here")
	}
	code, stdout, _ := dsx(t, "devices")
	if code != 0 || strings.Contains(stdout, "make build-gpu") || !strings.Contains(stdout, "no NVIDIA driver") {
		t.Errorf("exit %d: %s", code, stdout)
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

// TestHelp: every command's help writes flags --flag, as the README does,
// and shows no default for flags whose default is none.
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"train", "eval", "predict", "devices", "bench"} {
		code, stdout, _ := dsx(t, cmd, "--help")
		if code != 0 || !strings.Contains(stdout, "usage: dsx "+cmd) || !strings.Contains(stdout, "\n  --") {
			t.Errorf("dsx %s --help: exit %d, %q", cmd, code, stdout)
		}
		for _, l := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(l, "  -") && !strings.HasPrefix(l, "  --") {
				t.Errorf("dsx %s --help: flag line %q", cmd, l)
			}
		}
	}
	_, stdout, _ := dsx(t, "train", "--help")
	if !strings.Contains(stdout, "--ignore-index label\n    \tlabel whose rows are ignored (default: none)\n") || strings.Contains(stdout, "-9223372036854775808") {
		t.Errorf("--ignore-index help:\n%s", stdout)
	}
	// predict's help shows the columns it writes.
	_, stdout, _ = dsx(t, "predict", "--help")
	for _, w := range []string{"row,predicted,class[,label]", "top1,top1_class", "p_0,...,p_T-1", "top1_p", "(rows, K)"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("predict --help does not show %q", w)
		}
	}
}

// TestBenchCPU: asking for fused on the CPU says it runs as graph and why
// its chunks have the rows they have; the table leaves out the columns no
// CPU row fills (×eager without peers) and shows those it does (%floor,
// extra MiB, chunk: the CPU layer reports them, kit.Stats).
func TestBenchCPU(t *testing.T) {
	code, stdout, stderr := dsx(t, "bench", "--device", "cpu", "--shapes", "16x8x4", "--steps", "2", "--warmup", "0", "--variants", "fused")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "cpu runs variant fused as graph") {
		t.Errorf("no note that fused runs as graph: %s", stderr)
	}
	if !strings.Contains(stderr, "16×8×4 cpu graph: chunks of the whole batch: ") {
		t.Errorf("no note of the chunk rows and why: %s", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "floor") || !strings.Contains(lines[0], "MiB") || !strings.Contains(lines[0], "chunk") || strings.Contains(lines[0], "eager") ||
		!strings.Contains(lines[1], " graph ") || strings.Contains(lines[1], " - ") {
		t.Errorf("table:\n%s", stdout)
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

// TestBenchInputsTooLarge: a shape whose inputs the host cannot hold is
// refused before they are drawn, not a runtime crash.
func TestBenchInputsTooLarge(t *testing.T) {
	const need = (65536*65535 + 65536) * 12 // float32 draw and float64 copy
	if avail, ok := kit.HostAvailable(); !ok || avail > need {
		t.Skipf("the host has room (%d bytes available) for the inputs this test needs refused", avail)
	}
	code, _, stderr := dsx(t, "bench", "--device", "cpu", "--dtype", "float64", "--shapes", "1x65536x65535")
	if code != 1 || !strings.Contains(stderr, "out of memory") {
		t.Errorf("exit %d, stderr %q; want exit 1, out of memory", code, stderr)
	}
}
