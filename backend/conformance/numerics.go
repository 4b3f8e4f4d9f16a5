package conformance

// Numerics at the edges of the float range: huge logits must give the loss
// and gradient of the same row shifted to zero, because softmax and
// cross-entropy only see differences of logits.

import (
	"fmt"
	"math"
	"testing"

	"dsx/backend"
	"dsx/cpu"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// hugeRow is one row of logits offset + d_c, where offset + d_c is exactly
// representable in the dtype, so the exact loss and gradient are those of d.
type hugeRow struct {
	offset float64
	d      []float64
	label  int
}

// hugeRows are rows at offsets where S·lse − Σ a_c·z_c cancels: lse and z_y
// agree in every digit the offset leaves, so their difference loses them.
func hugeRows(dt tensor.Dtype) []hugeRow {
	d := []float64{0, 0.5, 1.25, 2, -3} // multiples of 1/8: exact next to 1e15 (ulp 1/8)
	eq := make([]float64, len(d))       // equal logits: loss log T, p = 1/T
	if dt == tensor.Float64 {
		return []hugeRow{
			{1e12, d, 1},  // S·lse − z_y: 3e-6 relative error
			{1e15, d, 4},  // 1.4e-2
			{-1e15, d, 0}, // the same below zero
			{3e60, eq, 2}, // lse rounds to 3e60: loss 0 instead of log T
			{-3e60, eq, 0},
			{1e300, eq, 3},
		}
	}
	// float32 holds 1e12 to 65536 only, so rows there either saturate or
	// tie; the loss is still computed in float64 from the float32 logits.
	f32 := func(v float64) float64 { return float64(float32(v)) }
	return []hugeRow{
		{1e6, d, 1}, // ulp 1/16 at 1e6
		{f32(1e12), []float64{0, 0, -65536, 65536 * -3, 0}, 0}, // three-way tie at the top: log 3
		{f32(1e12), eq, 2},
		{f32(3e38), eq, 1}, // near float32's largest: loss 0 instead of log T
		{f32(-3e38), eq, 4},
	}
}

// hugeLogits runs the rows of hugeRows through the backend (logits = x·W + b
// with x the identity, so that logits = W exactly) and compares every row's
// loss and the gradients with the reference on the rows shifted to zero.
func (s *suite) hugeLogits(t *testing.T) {
	rows := hugeRows(s.dt)
	B, T := len(rows), len(rows[0].d)
	for _, opts := range []graph.LossOptions{
		{Reduction: graph.None},
		{Reduction: graph.Mean, LabelSmoothing: 0.1},
		{Reduction: graph.Sum, SoftTargets: true},
	} {
		t.Run(fmt.Sprintf("%v,smoothing=%g,soft=%v", opts.Reduction, opts.LabelSmoothing, opts.SoftTargets), func(t *testing.T) {
			p := problem{B: B, N: B, T: T, opts: opts, x: make([]float64, B*B), bias: make([]float64, T)}
			shifted := make([]float64, B*T)
			for i, r := range rows {
				p.x[i*B+i] = 1
				for c, v := range r.d {
					p.W = append(p.W, r.offset+v)
					if dense.Round(s.dt, []float64{r.offset + v})[0] != r.offset+v {
						t.Fatalf("row %d: %g + %g is not exact in %v", i, r.offset, v, s.dt)
					}
					shifted[i*T+c] = v
				}
				if opts.SoftTargets {
					tg := make([]float64, T)
					tg[r.label], tg[(r.label+1)%T] = 0.75, 0.25
					p.targets = append(p.targets, tg...)
				} else {
					p.targets = append(p.targets, float64(r.label))
				}
			}
			l := s.open(t, p, graph.Want{DW: true, DB: true}, backend.Optimizer{})
			res, err := l.Compute(dense.New(s.dt, p.x, B, B), dense.New(s.dt, p.targets, p.targetShape()...))
			if err != nil {
				t.Fatal(err)
			}
			// The exact answer: the reference on the shifted rows (x = I, W = d).
			ref := cpu.Reference(p.x, shifted, p.bias, p.targets, B, B, T, opts)
			tl := tol.For(s.dt)
			if opts.Reduction == graph.None {
				got := dense.F64(res.Losses)
				for i, r := range rows {
					tol.Expect(t, fmt.Sprintf("row %d (offset %g) loss", i, r.offset), got[i:i+1], ref.Losses[i:i+1], tl)
				}
			}
			tol.Expect(t, "loss", []float64{res.Loss}, []float64{ref.Loss}, tl)
			// dW = xᵀ·dz = dz row by row.
			tol.Expect(t, "dW", dense.F64(res.DW), ref.DW, tl)
			tol.Expect(t, "db", dense.F64(res.DB), ref.DB, tl)
		})
	}
}

// equalLogits checks loss log T and p = 1/T for T equal logits at the
// dtype's extremes, through a one-row layer (softmaxOf).
func (s *suite) equalLogits(t *testing.T) {
	vals := []float64{3e60, 1e300, -1e300}
	if s.dt == tensor.Float32 {
		vals = []float64{3e38, -3e38, 1e30}
	}
	for _, v := range vals {
		for _, T := range []int{2, 7, 1000} {
			z := make([]float64, T)
			for c := range z {
				z[c] = v
			}
			p, loss := s.softmaxOf(t, z, T-1)
			want := make([]float64, T)
			for c := range want {
				want[c] = 1 / float64(T)
			}
			tol.Expect(t, fmt.Sprintf("T = %d logits of %g: loss", T, v), []float64{loss}, []float64{math.Log(float64(T))}, tol.For(s.dt))
			tol.Expect(t, fmt.Sprintf("T = %d logits of %g: p", T, v), p, want, tol.For(s.dt))
		}
	}
}
