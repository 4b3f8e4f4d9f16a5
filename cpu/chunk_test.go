package cpu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestChunkedHoldsChunks: a chunked layer's logits buffer holds a chunk's
// rows, never the whole batch's. (The numbers are checked by the
// conformance suite's Chunked tests.)
func TestChunkedHoldsChunks(t *testing.T) {
	for _, c := range []struct {
		chunk, budget int
		want          int
	}{
		{chunk: 2, want: 2},
		{budget: 3 * 4 * 7, want: 3}, // 3 rows of T=7 float32 logits
		{chunk: -1, want: 5},
	} {
		cfg := backend.Config{Spec: graph.Spec{B: 5, N: 3, T: 7, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
			ChunkRows: c.chunk, MemoryBudget: int64(c.budget)}
		l, err := Backend{}.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		x := tensor.New(tensor.WithShape(5, 3), tensor.WithBacking(make([]float32, 15)))
		y := tensor.New(tensor.WithShape(5), tensor.WithBacking([]float32{0, 1, 2, 3, 4}))
		if _, err := l.Compute(x, y); err != nil {
			t.Fatal(err)
		}
		if got := len(l.(*layer).t32.z) / 7; got != c.want {
			t.Errorf("chunk %d, budget %d: the logits buffer holds %d rows, want %d", c.chunk, c.budget, got, c.want)
		}
		l.Close()
	}
}

// TestStats: the layer reports its chunk rows and footprint, and times its
// products once it has run a batch.
func TestStats(t *testing.T) {
	l, x, y := stepFixtureChunk(t, 64, 16, 30, 24)
	defer l.Close()
	st := l.(backend.Stats)
	if _, err := st.FloorMs(64, 3); err == nil {
		t.Error("FloorMs before any batch: no error")
	}
	if _, err := l.Step(x, y); err != nil {
		t.Fatal(err)
	}
	m := st.MemStats()
	// 2·24×30 logits and gradient, 16 bytes of statistics a row, 30 column sums
	if m.ChunkRows != 24 || m.ExtraBytes != 4*2*24*30+16*24+4*30 {
		t.Errorf("MemStats %+v: want 24 rows, extra %d", m, 4*2*24*30+16*24+4*30)
	}
	if f, err := st.FloorMs(64, 3); err != nil || !(f > 0) {
		t.Errorf("FloorMs = %v, %v", f, err)
	}
	if _, err := st.FloorMs(65, 3); err == nil {
		t.Error("FloorMs of more rows than the layer's B: no error")
	}
}

// TestSpeedChunk: the rule's two regimes and its ceiling, worked out by
// hand for 2 threads of 2 MiB L2 (bench/RESULTS.md has the measurements).
func TestSpeedChunk(t *testing.T) {
	c := cacheInfo{L2: 2 << 20, Source: "test"}
	for _, k := range []struct {
		B, N, T int
		dx      bool
		budget  int64
		want    int
	}{
		{4096, 784, 10, false, 0, 1024},    // W fits: (2·10+784)·4 = 3216 B a row, 4 MiB / 3216 = 1304 → 1024
		{4096, 784, 10, true, 0, 512},      // with dx's row: 6352 B, 660 → 512
		{4096, 1024, 100, false, 0, 512},   // 400 KiB of W fits: 4896 B a row, 856 → 512
		{4096, 1024, 1000, false, 0, 2048}, // 3.9 MiB of W does not fit half of 4 MiB: large chunks
		{1024, 1024, 1000, false, 0, 1024}, // … no larger than the batch
		{8192, 1024, 32000, false, 0, 2048},
		{8192, 1024, 32000, false, 64 << 20, 524}, // 64 MiB of logits: 524 rows of 128000 B
		{8, 1 << 20, 1 << 20, false, 4, 1},        // a budget below one row: 1 row
	} {
		cfg := backend.Config{Spec: graph.Spec{B: k.B, N: k.N, T: k.T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: k.dx}}, MemoryBudget: k.budget}
		got := speedChunk(cfg, c, 2)
		if got.Rows != k.want || got.Why == "" {
			t.Errorf("%d×%d×%d dx %v budget %d: %d rows (%s), want %d", k.B, k.N, k.T, k.dx, k.budget, got.Rows, got.Why, k.want)
		}
	}
}

// TestReadCache: the level-2 cache per core from a sysfs-like folder, its
// size divided among the CPUs that share it; none there: assumedL2.
func TestReadCache(t *testing.T) {
	dir := t.TempDir()
	for idx, f := range map[string]map[string]string{
		"index0": {"level": "1", "type": "Data", "size": "48K", "shared_cpu_list": "0"},
		"index2": {"level": "2", "type": "Unified", "size": "2048K", "shared_cpu_list": "0-1,4"},
	} {
		if err := os.MkdirAll(filepath.Join(dir, idx), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, v := range f {
			if err := os.WriteFile(filepath.Join(dir, idx, name), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := readCache(dir); c.L2 != 2048<<10/3 || !strings.HasSuffix(c.Source, "size") {
		t.Errorf("readCache: %+v, want 2 MiB shared by 3 CPUs", c)
	}
	if c := readCache(filepath.Join(dir, "none")); c.L2 != assumedL2 || !strings.Contains(c.Source, "assumed") {
		t.Errorf("no cache files: %+v", c)
	}
	for s, want := range map[string]int64{"2048K": 2 << 20, "1M": 1 << 20, "512": 512, "": 0, "-4K": 0, "x": 0} {
		if got, ok := parseSize(s); got != want || ok != (want > 0) {
			t.Errorf("parseSize(%q) = %d, %v", s, got, ok)
		}
	}
	for s, want := range map[string]int{"0": 1, "0-3": 4, "0-1,8,10-11": 5, "": 1, "3-1": 1} {
		if got := countCPUs(s); got != want {
			t.Errorf("countCPUs(%q) = %d, want %d", s, got, want)
		}
	}
}
