package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/data"
	"dsx/model"
	"dsx/train"
)

// A model trained through package train, as a Go program would, is one
// that dsx eval reads, and eval's accuracy on the training rows is the one
// the trainer measured on them.
func TestLibraryModelEvaluates(t *testing.T) {
	set := &data.Set{Rows: 300, N: 3, Classes: 3, Source: "mem"}
	var csv strings.Builder
	for i := 0; i < set.Rows; i++ {
		c := i % 3
		set.Y = append(set.Y, int32(c))
		fmt.Fprintf(&csv, "%d", c)
		for j := 0; j < set.N; j++ {
			v := float32(10*j + 2*c*(1-j%2) + (i*7919)%5)
			set.X = append(set.X, v)
			fmt.Fprintf(&csv, ",%g", v)
		}
		csv.WriteString("\n")
	}
	dir := t.TempDir()
	csvPath, modelPath := filepath.Join(dir, "d.csv"), filepath.Join(dir, "m.safetensors")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	be, _, err := backend.Choose("cpu")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := train.New(be, set, set, train.Config{Epochs: 4, Batch: 16, Seed: 2,
		Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.05}}, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	res, err := tr.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := tr.Model()
	if err != nil {
		t.Fatal(err)
	}
	if err := model.Save(modelPath, m); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := dsx(t, "eval", "--model", modelPath, "--test", csvPath, "--device", "cpu")
	want := fmt.Sprintf("test accuracy %.4f", res.TestAccuracy)
	if code != 0 || !strings.Contains(stdout, want) {
		t.Fatalf("dsx eval: exit %d, %q %q; want %q", code, stdout, stderr, want)
	}
}
