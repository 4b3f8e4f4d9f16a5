package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestPlot draws the plot of a recorded GPU benchmark (bench/results-gpu.json:
// dsx variants and PyTorch eager and torch.compile on two shapes): a PNG
// that decodes, with ratios to eager, one series per device/variant/mode.
func TestPlot(t *testing.T) {
	b, err := os.ReadFile("../../bench/results-gpu.json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []benchRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	shapes, series, ratio := plotData(recs)
	if !ratio || len(shapes) < 2 || len(series) < 4 {
		t.Fatalf("plot data: ratio %v, %d shapes, %d series", ratio, len(shapes), len(series))
	}
	for _, s := range series {
		if s.name == "cuda torch-eager fp32" && (s.time[0] != 1 || s.mem[0] != 1) {
			t.Errorf("eager against itself: %v, %v", s.time, s.mem)
		}
	}
	path := filepath.Join(t.TempDir(), "p.png")
	if err := writePlot(path, recs); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(path)
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w < 600 {
		t.Errorf("image %d px wide", w)
	}
	if os.Getenv("DSX_PLOT_OUT") != "" {
		os.WriteFile(os.Getenv("DSX_PLOT_OUT"), out, 0o644)
	}
}
