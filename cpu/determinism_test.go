package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/pool"

	"gorgonia.org/tensor"
)

// trainParams opens a layer, sets seeded parameters and runs steps Adam
// steps on seeded batches (a smaller one last), returning W and b.
func trainParams(t *testing.T, cfg backend.Config, steps int, seed uint64) (W, b []float64) {
	t.Helper()
	l, err := Backend{}.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	B, N, T := cfg.B, cfg.N, cfg.T
	r := rand.New(rand.NewPCG(seed, 99))
	norm := func(n int, sd float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64() * sd
		}
		return v
	}
	mk := func(v []float64, shape ...int) *tensor.Dense { return dense.New(cfg.DType, v, shape...) }
	if err := l.SetParams(mk(norm(N*T, 0.1), N, T), mk(norm(T, 0.1), T)); err != nil {
		t.Fatal(err)
	}
	for s := 0; s < steps; s++ {
		rows := B
		if s == steps-1 {
			rows = B/2 + 1
		}
		y := make([]float64, rows)
		for i := range y {
			y[i] = float64(r.IntN(T))
		}
		if _, err := l.Step(mk(norm(rows*N, 1), rows, N), mk(y, rows)); err != nil {
			t.Fatal(err)
		}
	}
	w, bb, err := l.Params()
	if err != nil {
		t.Fatal(err)
	}
	return dense.F64(w), dense.F64(bb)
}

// TestDeterministic: the same data, seed and options give a bit-identical
// model, run after run: every row of the loss is computed by one goroutine
// however the worker pool splits the rows, the column sums split by columns
// and keep the row order, and the matrix products give each output element
// to one worker that sums over the inner dimension in order. Exact equality
// is the claim, so no tolerance. With gonum's GEMM (DSX_BLAS=off, or no
// system BLAS) that holds whatever the number of threads; a system BLAS
// (sysgemm.go) gets each product in GOMAXPROCS row blocks, and its kernels
// round the edge of a block differently, so there the model is the same run
// after run at one GOMAXPROCS only (checked at 4, twice).
func TestDeterministic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct {
		B, N, T, chunk int
		dt             tensor.Dtype
		opts           graph.LossOptions
	}{
		{1024, 64, 100, 0, tensor.Float32, graph.LossOptions{}},
		{1024, 64, 100, 0, tensor.Float64, graph.LossOptions{LabelSmoothing: 0.1}},
		{1024, 64, 100, 400, tensor.Float32, graph.LossOptions{}}, // chunks of 400 rows
		{4096, 784, 10, 0, tensor.Float32, graph.LossOptions{Reduction: graph.Sum}},
	} {
		t.Run(fmt.Sprintf("%d×%d×%d,%v,chunk=%d", c.B, c.N, c.T, c.dt, c.chunk), func(t *testing.T) {
			cfg := backend.Config{Spec: graph.Spec{B: c.B, N: c.N, T: c.T, DType: c.dt, Loss: c.opts, Want: graph.Want{DW: true, DB: true}},
				Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1e-2}, ChunkRows: c.chunk}
			runtime.GOMAXPROCS(4)
			rows := c.B
			if c.chunk > 0 {
				rows = c.chunk
			}
			// The loss pass splits rows into chunks of ≥ 16384 logits.
			if pool.Chunks(rows, 16384/c.T) < 2 {
				t.Fatalf("the worker pool would not split %d rows of %d classes", rows, c.T)
			}
			W0, b0 := trainParams(t, cfg, 4, 7)
			procs := []int{4, 1, 3}
			if BLAS().Name != "gonum" { // a system BLAS is bit-identical run after run, not across GOMAXPROCS (the row split changes its kernels)
				procs = []int{4}
			}
			for _, procs := range procs {
				runtime.GOMAXPROCS(procs)
				W, b := trainParams(t, cfg, 4, 7)
				for _, p := range []struct {
					name      string
					got, want []float64
				}{{"W", W, W0}, {"b", b, b0}} {
					for i := range p.want {
						if math.Float64bits(p.got[i]) != math.Float64bits(p.want[i]) {
							t.Fatalf("GOMAXPROCS %d: %s[%d] = %v, first run %v", procs, p.name, i, p.got[i], p.want[i])
						}
					}
				}
			}
		})
	}
}
