package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"dsx/model"
)

// writeST writes a safetensors data file of float32 features and int64
// labels under the given tensor names.
func writeST(t *testing.T, path, feat, labels string, x []float32, y []int64, n int) string {
	t.Helper()
	var xb, yb []byte
	for _, v := range x {
		xb = binary.LittleEndian.AppendUint32(xb, math.Float32bits(v))
	}
	for _, v := range y {
		yb = binary.LittleEndian.AppendUint64(yb, uint64(v))
	}
	h, _ := json.Marshal(map[string]any{
		feat:   map[string]any{"dtype": "F32", "shape": []int{len(y), n}, "data_offsets": []int{0, len(xb)}},
		labels: map[string]any{"dtype": "I64", "shape": []int{len(y)}, "data_offsets": []int{len(xb), len(xb) + len(yb)}},
	})
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	b := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	if err := os.WriteFile(path, append(append(b, xb...), yb...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTensorFlags: --features-tensor and --labels-tensor name the tensors
// of the --train file; the --test file takes its own flags, or the same
// names when it is a safetensors file that has them, and a .npy test file
// or one with the default names takes none.
func TestTensorFlags(t *testing.T) {
	const rows, n, T = 300, 4, 3
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	x, y := blobs(rows, n, T, 1)
	xt, yt := blobs(60, n, T, 2)
	writeST(t, p("custom.safetensors"), "emb", "cls", x, y, n)
	writeST(t, p("custom-test.safetensors"), "emb", "cls", xt, yt, n)
	writeST(t, p("default.safetensors"), "features", "labels", xt, yt, n)
	writeST(t, p("other.safetensors"), "e2", "c2", xt, yt, n)
	writeNPY(t, p("xt.npy"), []int{60, n}, xt)
	writeNPY(t, p("yt.npy"), []int{60}, yt)
	train := []string{"train", "--train", p("custom.safetensors"), "--features-tensor", "emb", "--labels-tensor", "cls",
		"--epochs", "3", "--batch", "32", "--lr", "0.05", "--device", "cpu", "--out", p("m.safetensors")}
	for _, c := range []struct {
		test []string
		code int
		want string
	}{
		{[]string{"--test", p("xt.npy"), "--test-labels", p("yt.npy")}, 0, "test accuracy"},
		{[]string{"--test", p("default.safetensors")}, 0, "test accuracy"},
		{[]string{"--test", p("custom-test.safetensors")}, 0, "test accuracy"},
		{[]string{"--test", p("other.safetensors"), "--test-features-tensor", "e2", "--test-labels-tensor", "c2"}, 0, "test accuracy"},
		{[]string{"--test", p("other.safetensors")}, 1, "no features tensor (looked for features, x, X, embeddings, inputs); it holds \"e2\", \"c2\""},
		{[]string{"--test", p("other.safetensors"), "--test-features-tensor", "e2"}, 1,
			"no labels tensor (looked for labels, y, Y, targets, label) and no labels file: name the labels tensor with --test-labels-tensor NAME or give a labels file with --test-labels FILE"},
		{[]string{"--test", p("xt.npy"), "--test-labels", p("yt.npy"), "--test-features-tensor", "e2"}, 1, "tensor names are for safetensors files"},
	} {
		code, stdout, stderr := dsx(t, append(train, c.test...)...)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d mentioning %q", c.test, code, stdout, stderr, c.code, c.want)
		}
	}
	// eval and predict: the flags name the tensors of their --test file.
	for _, cmd := range []string{"eval", "predict"} {
		code, _, stderr := dsx(t, cmd, "--model", p("m.safetensors"), "--test", p("custom-test.safetensors"),
			"--features-tensor", "emb", "--labels-tensor", "cls", "--device", "cpu")
		if code != 0 {
			t.Errorf("%s with tensor names: exit %d: %s", cmd, code, stderr)
		}
	}
}

// TestTrainWithoutTest: train without --test reports the training loss;
// the JSON summary and the model leave out every test figure.
func TestTrainWithoutTest(t *testing.T) {
	const rows, n, T = 300, 4, 3
	dir := t.TempDir()
	x, y := blobs(rows, n, T, 1)
	xp := writeNPY(t, filepath.Join(dir, "x.npy"), []int{rows, n}, x)
	yp := writeNPY(t, filepath.Join(dir, "y.npy"), []int{rows}, y)
	mp := filepath.Join(dir, "m.safetensors")
	args := []string{"train", "--train", xp, "--train-labels", yp, "--epochs", "3", "--batch", "32", "--lr", "0.05", "--device", "cpu", "--out", mp}
	code, stdout, stderr := dsx(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"test_rows", "test_loss", "test_accuracy", "test_data"} {
		if _, ok := rep[k]; ok {
			t.Errorf("JSON has %s without a test set: %s", k, stdout)
		}
	}
	// Three epochs on separable blobs: the loss falls well below a random
	// guess's ln 3 = 1.10.
	if l, _ := rep["train_loss"].(float64); !(l > 0 && l < 0.5) || rep["train_rows"] != float64(rows) {
		t.Errorf("train_loss %v, train_rows %v", rep["train_loss"], rep["train_rows"])
	}
	td, _ := rep["train_data"].(map[string]any)
	if td["mapped"] != (runtime.GOOS == "linux") {
		t.Errorf("train_data.mapped = %v: float32 .npy features are mapped on Linux", td["mapped"])
	}
	if strings.Contains(stderr, "test") {
		t.Errorf("progress mentions a test set: %s", stderr)
	}
	m, err := model.Load(mp)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Meta["test_accuracy"]; ok {
		t.Errorf("model metadata has test_accuracy without a test set: %v", m.Meta)
	}
	if code, stdout, _ = dsx(t, args...); code != 0 || !strings.Contains(stdout, "train loss") || !strings.Contains(stdout, "(no test set)") {
		t.Errorf("exit %d: %q", code, stdout)
	}
	// The labels hint says "give" once.
	code, _, stderr = dsx(t, "train", "--train", xp, "--device", "cpu", "--out", mp)
	if code != 1 || strings.Count(stderr, "give") != 1 {
		t.Errorf("exit %d, %q: want one hint to give the labels", code, stderr)
	}
}
