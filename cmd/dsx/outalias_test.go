package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutIsNotAnInput: --out naming a file that is one of the inputs,
// however it is named (the same path, ./x for x, a symbolic link to it, a
// hard link to it, a file of the --data folder), is refused with exit 2
// before anything runs, and the input is left as it was.
func TestOutIsNotAnInput(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	x, y := blobs(40, 3, 2, 1)
	writeNPY(t, "x.npy", []int{40, 3}, x)
	writeNPY(t, "y.npy", []int{40}, y)
	csv := separable(t, "c.csv")
	if err := os.Rename(csv, "c.csv"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("names.txt", []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := dsx(t, "train", "--train", "x.npy", "--train-labels", "y.npy", "--epochs", "1", "--device", "cpu", "--out", "m.safetensors"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	os.Symlink("x.npy", "link.npy")
	os.Link("y.npy", "hard.npy")
	os.Symlink(dir+"/m.safetensors", "mlink.safetensors")
	idx := filepath.Join(dir, "idx")
	os.Mkdir(idx, 0o755)
	idxDir(t, idx)
	before := map[string][]byte{}
	for _, f := range []string{"x.npy", "y.npy", "c.csv", "names.txt", "m.safetensors", filepath.Join(idx, "t10k-images-idx3-ubyte")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		before[f] = b
	}
	train := []string{"train", "--epochs", "1", "--device", "cpu"}
	predict := []string{"predict", "--model", "m.safetensors", "--device", "cpu"}
	for _, c := range []struct {
		args []string
		in   string
	}{
		{append(train, "--train", "x.npy", "--train-labels", "y.npy", "--out", "x.npy"), "x.npy"},
		{append(train, "--train", "x.npy", "--train-labels", "y.npy", "--out", "./x.npy"), "x.npy"},
		{append(train, "--train", "x.npy", "--train-labels", "y.npy", "--out", dir+"/y.npy"), "y.npy"},
		{append(train, "--train", "link.npy", "--train-labels", "y.npy", "--out", "x.npy"), "link.npy"},
		{append(train, "--train", "x.npy", "--train-labels", "y.npy", "--out", "link.npy"), "x.npy"},
		{append(train, "--train", "x.npy", "--train-labels", "y.npy", "--out", "hard.npy"), "y.npy"},
		{append(train, "--train", "c.csv", "--test", "x.npy", "--test-labels", "y.npy", "--out", "hard.npy"), "y.npy"},
		{append(train, "--train", "c.csv", "--class-names", "names.txt", "--out", "names.txt"), "names.txt"},
		{append(train, "--data", idx, "--out", filepath.Join(idx, "t10k-images-idx3-ubyte")), "t10k-images-idx3-ubyte"},
		{append(predict, "--test", "c.csv", "--out", "c.csv"), "c.csv"},
		{append(predict, "--test", "x.npy", "--out", "./x.npy"), "x.npy"},
		{append(predict, "--test", "x.npy", "--test-labels", "y.npy", "--out", "hard.npy"), "y.npy"},
		{append(predict, "--test", "x.npy", "--out", "mlink.safetensors.csv"), ""}, // no such file yet: fine
		{append(predict, "--test", "c.csv", "--out", "m.safetensors.json"), ""},
	} {
		code, _, stderr := dsx(t, c.args...)
		if c.in == "" {
			if code != 0 {
				t.Errorf("%v: exit %d: %s", c.args, code, stderr)
			}
			continue
		}
		if code != 2 || !strings.Contains(stderr, "is the input") || !strings.Contains(stderr, c.in) || strings.Contains(stderr, "device") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying --out is the input %s, before choosing a device", c.args, code, stderr, c.in)
		}
	}
	// A model path given as --out of predict (through a link with a .csv name).
	os.Symlink(dir+"/m.safetensors", "model.csv")
	if code, _, stderr := dsx(t, append(predict, "--test", "c.csv", "--out", "model.csv")...); code != 2 || !strings.Contains(stderr, "m.safetensors") {
		t.Errorf("predict --out a link to --model: exit %d, %q", code, stderr)
	}
	// bench --plot over a --peers file it merges.
	os.WriteFile("peers.json", []byte("[]"), 0o644)
	before["peers.json"] = []byte("[]")
	if code, _, stderr := dsx(t, "bench", "--device", "none", "--peers", "peers.json", "--plot", "./peers.json"); code != 2 || !strings.Contains(stderr, "is the input peers.json") {
		t.Errorf("bench --plot a --peers file: exit %d, %q", code, stderr)
	}
	for f, b := range before {
		if now, err := os.ReadFile(f); err != nil || string(now) != string(b) {
			t.Errorf("input %s changed (%v)", f, err)
		}
	}
}

// idxDir writes the four files of a tiny MNIST-style folder (4 training
// and 2 test images of 2×2, labels 0..1) into dir.
func idxDir(t *testing.T, dir string) {
	t.Helper()
	idx := func(magic uint32, dims []uint32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, magic)
		for _, d := range dims {
			b = binary.BigEndian.AppendUint32(b, d)
		}
		return append(b, body...)
	}
	for name, b := range map[string][]byte{
		"train-images-idx3-ubyte": idx(0x803, []uint32{4, 2, 2}, []byte{0, 9, 0, 9, 9, 0, 9, 0, 0, 8, 0, 8, 8, 0, 8, 0}),
		"train-labels-idx1-ubyte": idx(0x801, []uint32{4}, []byte{0, 1, 0, 1}),
		"t10k-images-idx3-ubyte":  idx(0x803, []uint32{2, 2, 2}, []byte{0, 9, 0, 9, 9, 0, 9, 0}),
		"t10k-labels-idx1-ubyte":  idx(0x801, []uint32{2}, []byte{0, 1}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
