package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestPlot draws the plot of a recorded GPU benchmark (bench/results-gpu.json:
// dsx variants and PyTorch eager and torch.compile on three shapes in three
// matmul modes): a PNG that decodes, with ratios to eager, one series per
// variant and mode, each drawn in a style of its own.
func TestPlot(t *testing.T) {
	b, err := os.ReadFile("../../bench/results-gpu.json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []benchRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	shapes, series, ratio, device := plotData(recs)
	if !ratio || device != "cuda" || len(shapes) != 3 || len(series) != 13 {
		t.Fatalf("plot data: ratio %v, device %q, %d shapes, %d series; want true, cuda, 3, 13", ratio, device, len(shapes), len(series))
	}
	found := false
	for _, s := range series {
		if s.name == "torch-eager fp32" {
			found = true
			if s.time[0] != 1 || s.mem[0] != 1 {
				t.Errorf("eager against itself: %v, %v", s.time, s.mem)
			}
		}
	}
	if !found {
		t.Errorf("no series torch-eager fp32 among %v", names(series))
	}
	checkStyles(t, series)
	checkLegend(t, series)

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

// TestPlotStyles: however many implementations and modes, no two series
// are drawn alike, and up to ten implementations the colour alone says the
// implementation and the marker alone the mode.
func TestPlotStyles(t *testing.T) {
	for _, c := range []struct{ impls, modes int }{{1, 1}, {5, 3}, {10, 3}, {11, 3}, {7, 9}, {25, 5}, {40, 2}} {
		t.Run(fmt.Sprintf("%d×%d", c.impls, c.modes), func(t *testing.T) {
			var series []*plotSeries
			for i := 0; i < c.impls; i++ {
				for m := 0; m < c.modes; m++ {
					impl, mode := fmt.Sprintf("v%d", i), fmt.Sprintf("m%d", m)
					series = append(series, &plotSeries{name: impl + " " + mode, impl: impl, mode: mode})
				}
			}
			checkStyles(t, series)
			checkLegend(t, series)
			if c.impls > len(plotPalette) {
				return
			}
			st := plotStyles(series)
			colour, glyph := map[string]string{}, map[string]string{}
			for k, s := range series {
				cs, gs := fmt.Sprint(st[k].color), fmt.Sprintf("%T", st[k].glyph)
				if prev, ok := colour[cs]; ok && prev != s.impl {
					t.Errorf("%s and %s share the colour %s", prev, s.impl, cs)
				}
				colour[cs] = s.impl
				if c.modes <= len(plotGlyphs) {
					if prev, ok := glyph[gs]; ok && prev != s.mode {
						t.Errorf("modes %s and %s share the marker %s", prev, s.mode, gs)
					}
					glyph[gs] = s.mode
				}
			}
		})
	}
}

// checkStyles fails when two series get the same colour, marker and dash
// pattern.
func checkStyles(t *testing.T, series []*plotSeries) {
	t.Helper()
	st := plotStyles(series)
	if len(st) != len(series) {
		t.Fatalf("%d styles for %d series", len(st), len(series))
	}
	seen := map[string]string{}
	for k, s := range st {
		key := fmt.Sprintf("%v %T %v", s.color, s.glyph, s.dashes)
		if prev, ok := seen[key]; ok {
			t.Errorf("%s and %s are drawn alike (%s)", prev, series[k].name, key)
		}
		seen[key] = series[k].name
	}
}

// checkLegend fails unless the legend lists every series once, and a
// column per mode holds that mode only (when there are columns by mode).
func checkLegend(t *testing.T, series []*plotSeries) {
	t.Helper()
	cols := legendColumns(series)
	listed := map[int]int{}
	for _, col := range cols {
		mode := ""
		for _, k := range col {
			if k < 0 {
				continue
			}
			listed[k]++
			if len(cols) == len(modesOf(series)) {
				if mode != "" && series[k].mode != mode {
					t.Errorf("legend column of %s also lists %s", mode, series[k].name)
				}
				mode = series[k].mode
			}
		}
	}
	for k, s := range series {
		if listed[k] != 1 {
			t.Errorf("the legend lists %s %d times", s.name, listed[k])
		}
	}
}

func modesOf(series []*plotSeries) map[string]bool {
	m := map[string]bool{}
	for _, s := range series {
		m[s.mode] = true
	}
	return m
}

func names(series []*plotSeries) []string {
	var n []string
	for _, s := range series {
		n = append(n, s.name)
	}
	return n
}

// TestPlotWithoutMemory: records that measure no memory (the CPU's, or
// peers that report none) draw an empty memory panel instead of failing on
// a log axis with nothing on it; rows that differ in storage, inputs or
// gradients are related only to eager rows of the same setting, and every
// fused peer counts as a peer.
func TestPlotWithoutMemory(t *testing.T) {
	rec := func(variant, storage, inputs string, ms float64) benchRecord {
		return benchRecord{B: 8, N: 4, T: 10, Device: "cpu", Variant: variant, Mode: "bf16", Storage: storage,
			Inputs: inputs, Grads: "W,b,x", MsPerStep: ms}
	}
	recs := []benchRecord{rec("chunked", "bf16", "lm", 2), rec("torch-eager", "bf16", "lm", 4),
		rec("cce", "bf16", "lm", 1), rec("chunked", "bf16", "random", 3)}
	shapes, series, ratio, _ := plotData(recs)
	if !ratio || len(shapes) != 1 || len(series) != 3 {
		t.Fatalf("ratio %v, %d shapes, series %v; want the 3 lm rows (no eager row of random inputs)", ratio, len(shapes), names(series))
	}
	if last := series[len(series)-1]; last.impl != "torch-eager" || series[0].impl != "chunked" || series[0].time[0] != 0.5 {
		t.Errorf("series %v: want dsx's first (chunked at 0.5 of eager), then the peers", names(series))
	}
	if _, err := plotPNG(recs); err != nil {
		t.Fatal(err)
	}
}
