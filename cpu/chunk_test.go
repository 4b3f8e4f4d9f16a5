package cpu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/kit"
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
	st := l.(kit.Stats)
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

// TestSpeedChunk: the rule's choices, worked out by hand for a 256 MiB L3
// (this project's machine: 260 MiB) and an 8 MiB one (bench/RESULTS.md has
// the measurements).
func TestSpeedChunk(t *testing.T) {
	big, small := cacheInfo{LLC: 256 << 20, Level: 3, Source: "test"}, cacheInfo{LLC: 8 << 20, Level: 3, Source: "test"}
	for _, k := range []struct {
		B, N, T int
		c       cacheInfo
		budget  int64
		want    int
	}{
		{4096, 784, 10, big, 0, 4096},      // 2·4096·10·4 B = 320 KiB of logits fit: the whole batch
		{4096, 1024, 1000, big, 0, 4096},   // 31 MiB fit 256 MiB
		{4096, 1024, 1000, small, 0, 1024}, // but not 8 MiB: N rows
		{4096, 1024, 10000, big, 0, 1024},  // 312 MiB do not fit: N = 1024 rows
		{8192, 1024, 32000, big, 0, 1024},
		{8192, 256, 32000, big, 0, 512},         // N = 256 < 512: 512 rows
		{8192, 4096, 128256, big, 0, 2048},      // N = 4096 > 2048: 2048 rows
		{512, 1024, 100000, small, 0, 512},      // no more rows than the smallest chunk: whole
		{8192, 1024, 32000, big, 64 << 20, 524}, // 64 MiB of logits: 524 rows of 128000 B
		{8, 1 << 20, 1 << 20, big, 4, 1},        // a budget below one row: 1 row
	} {
		cfg := backend.Config{Spec: graph.Spec{B: k.B, N: k.N, T: k.T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}, MemoryBudget: k.budget}
		got := speedChunk(cfg, k.c)
		if got.Rows != k.want || got.Why == "" {
			t.Errorf("%d×%d×%d, %s LLC, budget %d: %d rows (%s), want %d", k.B, k.N, k.T, kit.FormatBytes(k.c.LLC), k.budget, got.Rows, got.Why, k.want)
		}
	}
}

// TestReadCache: the last-level cache from a sysfs-like folder (the
// highest level of data or unified cache), level 2 where that is the last,
// assumedLLC where there are none.
func TestReadCache(t *testing.T) {
	dir := t.TempDir()
	write := func(idx string, f map[string]string) {
		if err := os.MkdirAll(filepath.Join(dir, idx), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, v := range f {
			if err := os.WriteFile(filepath.Join(dir, idx, name), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("index0", map[string]string{"level": "1", "type": "Data", "size": "48K"})
	write("index1", map[string]string{"level": "1", "type": "Instruction", "size": "32K"})
	write("index2", map[string]string{"level": "2", "type": "Unified", "size": "2048K"})
	if c := readCache(dir); c.LLC != 2<<20 || c.Level != 2 {
		t.Errorf("L2 the last level: %+v", c)
	}
	write("index3", map[string]string{"level": "3", "type": "Unified", "size": "266240K"})
	if c := readCache(dir); c.LLC != 266240<<10 || c.Level != 3 || !strings.HasSuffix(c.Source, "size") {
		t.Errorf("L3: %+v", c)
	}
	if c := readCache(filepath.Join(dir, "none")); c.LLC != assumedLLC || !strings.Contains(c.Source, "assumed") {
		t.Errorf("no cache files: %+v", c)
	}
	for s, want := range map[string]int64{"2048K": 2 << 20, "1M": 1 << 20, "512": 512, "": 0, "-4K": 0, "x": 0} {
		if got, ok := parseSize(s); got != want || ok != (want > 0) {
			t.Errorf("parseSize(%q) = %d, %v", s, got, ok)
		}
	}
}
