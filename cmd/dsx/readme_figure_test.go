package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeFigure keeps bench/results.png and the README's GPU figures
// true to the records they come from: bench/results-gpu-readme.json holds
// exactly the rows bench/readme-figure.sh selects (fp32, each shape from
// the device call the README quotes), the README's sentence quotes those
// rows, and the PNG is what dsx bench --plot draws from them today (after a
// change to the plot, run bench/readme-figure.sh).
func TestReadmeFigure(t *testing.T) {
	recs := readRecords(t, "../../bench/results-gpu-readme.json")
	var want []benchRecord
	for _, src := range []struct {
		file string
		T    int
	}{{"results-gpu-final.json", 1000}, {"results-gpu-xent.json", 32000}, {"results-gpu.json", 128256}} {
		for _, r := range readRecords(t, "../../bench/"+src.file) {
			if r.T == src.T && (r.Mode == "fp32" || r.Mode == "") {
				want = append(want, r)
			}
		}
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("bench/results-gpu-readme.json is not bench/readme-figure.sh's selection: run it")
	}

	// The README's sentence, from the rows.
	get := func(T int, variant string) benchRecord {
		for _, r := range recs {
			if r.T == T && r.Variant == variant {
				return r
			}
		}
		t.Fatalf("no %s row at T = %d", variant, T)
		return benchRecord{}
	}
	gib := func(b int64) float64 { return float64(b) / (1 << 30) }
	sentence := fmt.Sprintf("32768×1024×1000 %.2f ms vs %.2f ms; 8192×4096×32000 %.1f ms vs %.1f ms; 8192×4096×128256 chunked %.0f ms vs %.0f ms with %.1f GiB of extra device memory vs %.1f GiB",
		get(1000, "fused").MsPerStep, get(1000, "torch-eager").MsPerStep, get(32000, "fused").MsPerStep, get(32000, "torch-eager").MsPerStep,
		get(128256, "chunked").MsPerStep, get(128256, "torch-eager").MsPerStep, gib(get(128256, "chunked").ExtraBytes), gib(get(128256, "torch-eager").ExtraBytes))
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := regexp.MustCompile(`\s+`).ReplaceAllString(string(readme), " ")
	if !strings.Contains(flat, sentence) {
		t.Errorf("the README does not quote the figure's rows as %q", sentence)
	}
	if !strings.Contains(flat, "bench/readme-figure.sh") {
		t.Errorf("the README does not say which command draws bench/results.png")
	}

	// The picture.
	got, err := plotPNG(recs)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../../bench/results.png")
	if err != nil {
		t.Fatal(err)
	}
	a, errA := png.Decode(bytes.NewReader(got))
	b, errB := png.Decode(bytes.NewReader(committed))
	if errA != nil || errB != nil {
		t.Fatalf("decoding: %v, %v", errA, errB)
	}
	// The drawing is pure Go and the same bits on this project's machines
	// (amd64); a compiler that fuses multiply-adds (arm64) may shade a few
	// anti-aliased edge pixels differently, so up to 1 pixel in 1000 may
	// differ. Any change to what is drawn (a bar, a label, the layout)
	// changes far more.
	if n, total := diffPixels(a, b); n < 0 || n*1000 > total {
		t.Errorf("bench/results.png is not what dsx bench --plot draws from bench/results-gpu-readme.json (%d of %d pixels differ; sizes %v and %v): run bench/readme-figure.sh",
			n, total, a.Bounds(), b.Bounds())
	}
}

// diffPixels counts the pixels that differ between a and b (-1: not the
// same size) and returns the total.
func diffPixels(a, b image.Image) (n, total int) {
	if a.Bounds() != b.Bounds() {
		return -1, 0
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				n++
			}
		}
	}
	return n, a.Bounds().Dx() * a.Bounds().Dy()
}
