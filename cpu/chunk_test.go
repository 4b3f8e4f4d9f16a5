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
