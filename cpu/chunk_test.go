package cpu

import (
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
