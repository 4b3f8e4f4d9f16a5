package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestTrainDeterministic: dsx train with the same data, seed and options
// writes the same model file, byte for byte, run after run; another seed
// writes another (so the comparison can fail).
func TestTrainDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var rows []string
	for i := 0; i < 300; i++ {
		c := r.IntN(4)
		rows = append(rows, fmt.Sprintf("%d,%.4f,%.4f,%.4f,%.4f,%.4f", c,
			float64(c)+r.NormFloat64(), r.NormFloat64(), float64(-c)+r.NormFloat64(), r.NormFloat64(), r.NormFloat64()))
	}
	train := writeCSV(t, "train.csv", rows)
	test := writeCSV(t, "test.csv", rows[:50])
	dir := t.TempDir()
	model := func(name, seed string, extra ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, name)
		args := append([]string{"train", "--train", train, "--test", test, "--epochs", "3", "--batch", "32",
			"--device", "cpu", "--seed", seed, "--out", out}, extra...)
		if code, _, stderr := dsx(t, args...); code != 0 {
			t.Fatalf("train %v exited %d: %s", args, code, stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, opts := range [][]string{
		{"--optimizer", "adam"},
		{"--optimizer", "sgd", "--lr", "0.05", "--label-smoothing", "0.1", "--dtype", "float64"},
	} {
		a := model("a.safetensors", "7", opts...)
		b := model("b.safetensors", "7", opts...)
		if !bytes.Equal(a, b) {
			t.Errorf("%v: two runs with seed 7 wrote different models (%d and %d bytes)", opts, len(a), len(b))
		}
		if c := model("c.safetensors", "8", opts...); bytes.Equal(a, c) {
			t.Errorf("%v: seeds 7 and 8 wrote the same model", opts)
		}
	}
}
