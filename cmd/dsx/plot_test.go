package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func readRecords(t *testing.T, path string) []benchRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []benchRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// decodePNG renders the plot of recs and returns its size in pixels.
func decodePNG(t *testing.T, recs []benchRecord) (w, h int) {
	t.Helper()
	b, err := plotPNG(recs)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// TestPlotGPURecords: the recorded GPU benchmark (bench/results-gpu.json:
// three shapes; dsx's fused, unfused and chunked and PyTorch eager and
// torch.compile in up to three matmul modes) becomes a panel per shape
// and quantity, bars grouped by mode, dsx's variants before the peers,
// each time related to eager's in the same mode.
func TestPlotGPURecords(t *testing.T) {
	recs := readRecords(t, "../../bench/results-gpu.json")
	d := collectPlot(recs)
	if d.device != "cuda" || strings.Join(d.shapes, " ") != "32768×1024×1000 8192×4096×32000 8192×4096×128256" ||
		strings.Join(d.groups, ",") != "fp32,tf32,bf16" || strings.Join(d.impls, ",") != "fused,chunked,unfused,torch-eager,torch-compile" {
		t.Fatalf("device %q, shapes %q, groups %q, implementations %q", d.device, d.shapes, d.groups, d.impls)
	}
	fused, eager := plotCell{0, 0, 0}, plotCell{0, 0, 3}
	if d.time[fused] != 3.8052390000000003 || d.ratio[fused] != 3.8052390000000003/3.247215986251831 || d.time[eager] != 3.247215986251831 {
		t.Errorf("fused fp32 at 32768×1024×1000: %v ms, %v× eager's %v ms", d.time[fused], d.ratio[fused], d.time[eager])
	}
	if _, ok := d.ratio[eager]; ok {
		t.Errorf("eager related to itself")
	}
	if m := d.mem[plotCell{2, 0, 1}]; math.Abs(m-1052277776.0/(1<<20)) > 1e-9 {
		t.Errorf("chunked fp32 memory at 8192×4096×128256: %v MiB", m)
	}
	if _, ok := d.time[plotCell{2, 1, 0}]; ok {
		t.Errorf("a tf32 bar at 8192×4096×128256, where none was measured")
	}
	if cols, rows, q := d.layout(); cols != 3 || rows != 1 || len(q) != 2 {
		t.Errorf("layout %d×%d of %v; want 3 panels a row, a row of time and one of memory", cols, rows, q)
	}
	if w, h := decodePNG(t, recs); w < 900 || h < 500 {
		t.Errorf("image %d×%d px", w, h)
	}
}

// cpuRecords are n shapes of the CPU's graph and chunked variants, with
// no memory measured (as the CPU backend reports).
func cpuRecords(n int) []benchRecord {
	var recs []benchRecord
	for i := range n {
		for k, v := range []string{"graph", "chunked"} {
			recs = append(recs, benchRecord{B: 8 << i, N: 8, T: 8, Device: "cpu", Variant: v, Mode: "fp32", Storage: "fp32",
				Grads: "W,b", Inputs: "random", MsPerStep: 0.1 * float64(i+1) * float64(k+1)})
		}
	}
	return recs
}

// TestPlotShapes: one, two and five shapes of CPU rows (no memory: no
// memory panel, no panic on the zeros), wrapped at three panels a row; a
// skipped row and a row of zero time are left out.
func TestPlotShapes(t *testing.T) {
	var heights []int
	for _, c := range []struct{ shapes, cols, rows int }{{1, 1, 1}, {2, 2, 1}, {5, 3, 2}} {
		recs := append(cpuRecords(c.shapes), benchRecord{B: 1, N: 1, T: 1, Device: "cpu", Variant: "graph", Skipped: "no"},
			benchRecord{B: 2, N: 1, T: 1, Device: "cpu", Variant: "graph"})
		d := collectPlot(recs)
		cols, rows, q := d.layout()
		if len(d.shapes) != c.shapes || cols != c.cols || rows != c.rows || !slices.Equal(q, []string{"time"}) || len(d.mem) != 0 {
			t.Errorf("%d shapes: %d shapes in %d×%d panels of %v, memory %v", c.shapes, len(d.shapes), cols, rows, q, d.mem)
		}
		if strings.Join(d.impls, ",") != "graph,chunked" || strings.Join(d.groups, ",") != "fp32" {
			t.Errorf("%d shapes: implementations %v, groups %v", c.shapes, d.impls, d.groups)
		}
		w, h := decodePNG(t, recs)
		heights = append(heights, h)
		if c.shapes > 1 && w < 600 {
			t.Errorf("%d shapes: %d px wide", c.shapes, w)
		}
	}
	if heights[0] != heights[1] || heights[2] <= heights[1] {
		t.Errorf("heights %v: one row of panels for one and two shapes, two for five", heights)
	}
	// A memory figure for some rows only: the row of memory panels appears.
	recs := cpuRecords(2)
	recs[0].ExtraBytes = 3 << 20
	d := collectPlot(recs)
	if _, _, q := d.layout(); len(q) != 2 || len(d.mem) != 1 {
		t.Errorf("one row with memory: quantities %v, memory %v", q, d.mem)
	}
	decodePNG(t, recs)
}

// TestPlotSettings: rows that differ only in their gradients are grouped
// apart, and related to the eager row of their own setting alone.
func TestPlotSettings(t *testing.T) {
	rec := func(variant, grads string, ms float64) benchRecord {
		return benchRecord{B: 8, N: 4, T: 10, Device: "cuda", Variant: variant, Mode: "bf16", Storage: "bf16", Inputs: "lm", Grads: grads, MsPerStep: ms}
	}
	recs := []benchRecord{rec("chunked", "W,b,x", 2), rec("torch-eager", "W,b,x", 4), rec("cce", "W,b,x", 1), rec("chunked", "W,b", 3)}
	d := collectPlot(recs)
	if strings.Join(d.groups, ",") != "bf16 storage lm +dx,bf16 storage lm" && strings.Join(d.groups, ",") != "bf16 storage lm,bf16 storage lm +dx" {
		t.Fatalf("groups %q", d.groups)
	}
	if strings.Join(d.impls, ",") != "chunked,torch-eager,cce" {
		t.Errorf("implementations %v: dsx's first, then the peers in their order", d.impls)
	}
	dx := slices.Index(d.groups, "bf16 storage lm +dx")
	if r := d.ratio[plotCell{0, dx, 0}]; r != 0.5 {
		t.Errorf("chunked with dx: %v× eager, want 0.5", r)
	}
	if r, ok := d.ratio[plotCell{0, 1 - dx, 0}]; ok {
		t.Errorf("chunked without dx related to eager with dx: %v", r)
	}
	decodePNG(t, recs)
}

// TestImplColors: an implementation has the same colour in every plot,
// and however many implementations, no two share a colour (not even the
// same variant on two devices).
func TestImplColors(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("v%d", i))
	}
	for _, impls := range [][]string{many, {"cpu graph", "cpu chunked", "cuda fused", "cuda chunked", "cuda torch-eager"},
		append([]string{"fused", "torch-eager", "cce"}, many[:12]...)} {
		seen := map[string]string{}
		for k, c := range plotColors(impls) {
			if prev, ok := seen[fmt.Sprint(c)]; ok {
				t.Errorf("%s and %s share the colour %v", prev, impls[k], c)
			}
			seen[fmt.Sprint(c)] = impls[k]
		}
	}
	a, b := plotColors([]string{"chunked", "fused", "torch-eager"}), plotColors([]string{"fused", "unfused", "chunked", "torch-eager", "torch-compile"})
	if a[0] != b[2] || a[1] != b[0] || a[2] != b[3] {
		t.Errorf("colours change with the other implementations: %v and %v", a, b)
	}
}

// TestLinearTicks: four to eight labelled ticks on any range, labelled in
// plain decimals (no 0.30000000000000004).
func TestLinearTicks(t *testing.T) {
	for _, hi := range []float64{3.4e-5, 0.0089, 0.3, 0.345, 1, 1.15, 4.43, 24.5, 99, 398, 12000, 2.5e6} {
		var labels []string
		for _, tk := range (linearTicks{}).Ticks(0, hi) {
			if tk.Label == "" {
				continue
			}
			labels = append(labels, tk.Label)
			if v, err := strconv.ParseFloat(tk.Label, 64); err != nil || math.Abs(v-tk.Value) > 1e-9*hi || len(tk.Label) > 9 {
				t.Errorf("0..%v: tick %v labelled %q", hi, tk.Value, tk.Label)
			}
		}
		if v, _ := strconv.ParseFloat(labels[0], 64); len(labels) < 4 || len(labels) > 8 || v != 0 {
			t.Errorf("0..%v: labelled ticks %v", hi, labels)
		}
	}
}

func TestPlotNumber(t *testing.T) {
	for v, want := range map[float64]string{0.0731234: "0.0731", 2.9721: "2.97", 84.468: "84.5", 335.8: "336", 10084.5: "10084", 1003.5: "1004"} {
		if got := plotNumber(v); got != want {
			t.Errorf("plotNumber(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestBenchPlotCPU: dsx bench --plot on the CPU, one tiny shape (whose
// memory the CPU does not measure: a zero that once panicked).
func TestBenchPlotCPU(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.png")
	code, _, stderr := dsx(t, "bench", "--device", "cpu", "--shapes", "8x8x8", "--steps", "1", "--warmup", "0", "--plot", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(p)
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}
