package cudatest

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/dist/disttest"
	"dsx/graph"
	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

// DataParallelOne: a layer of a data-parallel world of one rank, which
// takes the whole data-parallel path (the global batch's scales written by
// the host, dW and db all-reduced: on the device with NCCL where it loads,
// else through host copies), steps bitwise as the one-process layer does:
// without class weights the denominators are integer counts, so the scales
// are the same bits, and an all-reduce over one rank changes nothing. It
// logs how dW and db were reduced.
func DataParallelOne(t *testing.T, dev string) {
	const B, N, T = 9, 5, 300
	o := graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: 7, LabelSmoothing: 0.1, ZLoss: 1e-4}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, chunk := range []int{0, 4} {
			t.Run(fmt.Sprintf("%v/chunk=%d", dt, chunk), func(t *testing.T) {
				cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: dt, Loss: o, Want: graph.Want{DW: true, DB: true}},
					Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 0.01}, ChunkRows: chunk}
				one := open(t, dev, cfg)
				cfg.Comm = disttest.World(1)[0]
				dp := open(t, dev, cfg)
				p := NewProblem(3, B, N, T, o, "")
				for _, l := range []backend.Layer{one, dp} {
					if err := l.SetParams(dense.New(dt, p.W, N, T), dense.New(dt, p.B, T)); err != nil {
						t.Fatal(err)
					}
				}
				for step, rows := range []int{B, 4, B} {
					x, y := dense.New(dt, p.X[:rows*N], rows, N), dense.New(dt, p.Tg[:rows], rows)
					l1, err1 := one.Step(x, y)
					l2, err2 := dp.Step(x, y)
					if err1 != nil || err2 != nil {
						t.Fatalf("step %d: %v, %v", step, err1, err2)
					}
					if math.Float64bits(l1) != math.Float64bits(l2) {
						t.Fatalf("step %d: loss %v through the data-parallel path, %v without", step, l2, l1)
					}
				}
				w1, b1, _ := one.Params()
				w2, b2, _ := dp.Params()
				if !slices.Equal(dense.F64(w1), dense.F64(w2)) || !slices.Equal(dense.F64(b1), dense.F64(b2)) {
					t.Fatal("the parameters after 3 steps differ between the data-parallel path of one rank and the one-process layer")
				}
				if p, ok := dp.(kit.Parallel); ok && p.Ranks() != nil {
					s := p.Ranks().Stats()
					t.Logf("dW and db reduced by %s: %d calls, %d bytes", s.How, s.Calls, s.Bytes)
				} else {
					t.Fatal("the layer of a world of one does not report its reductions (kit.Parallel)")
				}
			})
		}
	}
}
