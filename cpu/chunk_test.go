package cpu

import (
	"sort"
	"testing"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestChunkedCompilesChunks: a chunked layer compiles graphs of the chunk's
// rows (and the last, shorter chunk's), never one of the whole batch, so no
// buffer holds the whole batch's logits. (The numbers are checked by the
// conformance suite's Chunked tests.)
func TestChunkedCompilesChunks(t *testing.T) {
	for _, c := range []struct {
		chunk, budget int
		want          []int
	}{
		{chunk: 2, want: []int{1, 2}},
		{budget: 3 * 4 * 7, want: []int{2, 3}}, // 3 rows of T=7 float32 logits
		{chunk: -1, want: []int{5}},
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
		var got []int
		for rows := range l.(*layer).train {
			got = append(got, rows)
		}
		sort.Ints(got)
		if len(got) != len(c.want) || got[0] != c.want[0] || got[len(got)-1] != c.want[len(c.want)-1] {
			t.Errorf("chunk %d, budget %d: compiled batch sizes %v, want %v", c.chunk, c.budget, got, c.want)
		}
		l.Close()
	}
}
