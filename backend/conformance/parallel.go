package conformance

// The layer as one rank of a data-parallel job (Config.Comm) on in-process
// worlds of 1, 2 and 3 ranks (package disttest), against the one-process
// layer on the same global batches.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"dsx/backend"
	"dsx/dist"
	"dsx/dist/disttest"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/rowmath"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// parallelCases are the loss options of the data-parallel checks: every
// denominator of the mean (kept rows, their class weights, z-loss's kept
// rows), the sum, and probability targets.
var parallelCases = []struct {
	name string
	o    graph.LossOptions
}{
	{"mean", graph.LossOptions{}},
	{"ignore_index+weights", graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: 3, ClassWeights: []float64{0.5, 2, 1, 3, 0.25}}},
	{"smoothing+zloss+ignore", graph.LossOptions{LabelSmoothing: 0.1, ZLoss: 1e-3, UseIgnoreIndex: true, IgnoreIndex: 1}},
	{"sum+weights", graph.LossOptions{Reduction: graph.Sum, ClassWeights: []float64{1, 2, 3, 4, 5}}},
	{"soft", graph.LossOptions{SoftTargets: true, LabelSmoothing: 0.05}},
}

// parallelOptimizers: SGD with momentum, and Adam with ε = 0.01, which keeps
// Adam's amplification of a gradient's rounding (≤ 2·lr/ε, see
// tol.DataParallelParams) at 2: at ε = 1e-8 a gradient that is zero up to
// rounding can flip its update by 2·lr, and no bound would be left to test.
var parallelOptimizers = []backend.Optimizer{
	{Kind: backend.SGD, LR: 0.1, Momentum: 0.9},
	{Kind: backend.Adam, LR: 0.01, Eps: 0.01, WeightDecay: 0.01},
}

// parallelBatches are the global batches stepped on, in order: rows of the
// problem from 0, the second a tail batch of fewer rows than the largest
// world has ranks (one rank gets none).
var parallelBatches = []int{7, 2, 7}

func (s *suite) dataParallel(t *testing.T) {
	if !s.caps.DataParallel {
		t.Skipf("%s declares no data-parallel steps", s.b.Name())
	}
	for _, c := range parallelCases {
		for _, o := range parallelOptimizers {
			for _, P := range []int{1, 2, 3} {
				t.Run(fmt.Sprintf("%s/%v/P=%d", c.name, o.Kind, P), func(t *testing.T) {
					if m := s.caps.Xents[s.xent].Loss.Missing(c.o); m != "" {
						t.Skipf("%s declares no %s", s.b.Name(), m)
					}
					s.parallelSteps(t, random(31, 7, 4, 5, c.o), o, P)
				})
			}
		}
	}
	t.Run("BadShare", s.parallelBadShare)
	t.Run("VocabTiles", func(t *testing.T) {
		// The scales of the tiled softmax-cross-entropy, which has its own
		// plan, over tiles of 2 of the 5 classes.
		if !s.caps.Xents[s.xent].VocabTiles {
			t.Skipf("%s declares no vocabulary tiles for %v", s.b.Name(), s.xent)
		}
		c := *s
		c.tile = 2
		for _, o := range parallelOptimizers {
			t.Run(o.Kind.String(), func(t *testing.T) { c.parallelSteps(t, random(31, 7, 4, 5, parallelCases[2].o), o, 3) })
		}
	})
}

// ranks opens one layer a rank of a new world of P (concurrently: a backend
// may need every rank for what Open does) with p's parameters.
func (s *suite) ranks(t *testing.T, p problem, want graph.Want, o backend.Optimizer, P int) []backend.Layer {
	t.Helper()
	world := disttest.World(P)
	ls := make([]backend.Layer, P)
	err := disttest.Each(P, func(r int) error {
		cfg := backend.Config{Spec: graph.Spec{B: p.B, N: p.N, T: p.T, DType: s.dt, Loss: p.opts, Want: want}, Optimizer: o, ChunkRows: s.chunk, Xent: s.xent, VocabTile: s.tile, Comm: world[r]}
		l, err := s.b.Open(cfg)
		if err != nil {
			return err
		}
		ls[r] = l
		return l.SetParams(dense.New(s.dt, p.W, p.N, p.T), dense.New(s.dt, p.bias, p.T))
	})
	t.Cleanup(func() {
		for _, l := range ls {
			if l != nil {
				l.Close()
			}
		}
	})
	if err != nil {
		t.Fatalf("open %d ranks: %v", P, err)
	}
	return ls
}

// share is rank r's rows [lo, hi) of p's first rows rows as tensors, nil
// for none.
func share(dt tensor.Dtype, p problem, rows, r, P int) (x, y *tensor.Dense) {
	lo, hi := dist.Share(rows, r, P)
	if lo == hi {
		return nil, nil
	}
	x = dense.New(dt, p.x[lo*p.N:hi*p.N], hi-lo, p.N)
	if p.opts.SoftTargets {
		return x, dense.New(dt, p.targets[lo*p.T:hi*p.T], hi-lo, p.T)
	}
	return x, dense.New(dt, p.targets[lo:hi], hi-lo)
}

// parallelSteps steps a P-rank world and the one-process layer on the same
// global batches and checks: a step's loss, dW, db and each rank's rows of
// dx (Compute) within tol.DataParallel; the parameters after every step
// within tol.DataParallelParams; every rank's loss and parameters
// bitwise equal; and a second world's run bitwise equal to the first.
func (s *suite) parallelSteps(t *testing.T, p problem, o backend.Optimizer, P int) {
	ref := s.open(t, p, all, o)
	run := func() [][]float64 {
		ls := s.ranks(t, p, all, o, P)
		var params [][]float64
		gmax, growth := 0.0, 1.0
		for step, rows := range parallelBatches {
			gx, gy := share(s.dt, p, rows, 0, 1)
			want, err := ref.Compute(gx, gy)
			if err != nil {
				t.Fatal(err)
			}
			res := make([]*backend.Result, P)
			if err := disttest.Each(P, func(r int) error {
				x, y := share(s.dt, p, rows, r, P)
				var err error
				res[r], err = ls[r].Compute(x, y)
				return err
			}); err != nil {
				t.Fatalf("step %d: compute: %v", step, err)
			}
			tl := tol.DataParallel(s.dt)
			for r, g := range res {
				tol.Expect(t, fmt.Sprintf("step %d rank %d loss", step, r), []float64{g.Loss}, []float64{want.Loss}, tl)
				tol.Expect(t, fmt.Sprintf("step %d rank %d dW", step, r), dense.F64(g.DW), dense.F64(want.DW), tl)
				tol.Expect(t, fmt.Sprintf("step %d rank %d db", step, r), dense.F64(g.DB), dense.F64(want.DB), tl)
				if lo, hi := dist.Share(rows, r, P); lo < hi {
					tol.Expect(t, fmt.Sprintf("step %d rank %d dx", step, r), dense.F64(g.DX), dense.F64(want.DX)[lo*p.N:hi*p.N], tl)
				} else if g.DX != nil {
					t.Errorf("step %d rank %d: dx of an empty share has shape %v", step, r, g.DX.Shape())
				}
			}
			gmax = max(gmax, maxAbs(dense.F64(want.DW)), maxAbs(dense.F64(want.DB)))
			growth = max(growth, 1+o.LR*lipschitz(p, rows))
			wantLoss, err := ref.Step(gx, gy)
			if err != nil {
				t.Fatal(err)
			}
			losses := make([]float64, P)
			if err := disttest.Each(P, func(r int) error {
				x, y := share(s.dt, p, rows, r, P)
				var err error
				losses[r], err = ls[r].Step(x, y)
				return err
			}); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if step == 0 {
				tol.Expect(t, "first step's loss", losses[:1], []float64{wantLoss}, tol.DataParallel(s.dt))
			}
			params = params[:0]
			for r, l := range ls {
				w, b, err := l.Params()
				if err != nil {
					t.Fatal(err)
				}
				got := append(dense.F64(w), dense.F64(b)...)
				if r > 0 && (!slices.Equal(got, params[0]) || losses[r] != losses[0]) {
					t.Fatalf("step %d: rank %d's parameters or loss (%v) differ from rank 0's (%v): every rank must apply the same update", step, r, losses[r], losses[0])
				}
				params = append(params, got)
			}
			w, b, err := ref.Params()
			if err != nil {
				t.Fatal(err)
			}
			tol.Expect(t, fmt.Sprintf("W and b after step %d", step), params[0], append(dense.F64(w), dense.F64(b)...),
				tol.DataParallelParams(s.dt, step+1, gmax, amplification(o, step+1), growth))
		}
		return params
	}
	first := run()
	ref.SetParams(dense.New(s.dt, p.W, p.N, p.T), dense.New(s.dt, p.bias, p.T))
	if again := run(); !slices.Equal(again[0], first[0]) {
		t.Errorf("a second run of %d ranks gives other parameters: reruns must be bitwise identical", P)
	}
}

// amplification is how much an update of o can magnify a gradient
// difference, over steps steps (tol.DataParallelParams).
func amplification(o backend.Optimizer, steps int) float64 {
	o = o.WithDefaults()
	if o.Kind == backend.Adam {
		return 2 * o.LR / o.Eps
	}
	if o.Momentum == 0 {
		return o.LR
	}
	return o.LR * math.Min(float64(steps), 1/(1-o.Momentum))
}

// lipschitz bounds how far the gradients of p's first rows rows move per
// unit of parameter change: ½ (the softmax's Jacobian) · (‖x‖²_F + rows, b's
// column of ones) / the Mean denominator (1 under Sum), times the largest
// class weight and 1 + 8λ for z-loss λ (its Hessian adds 2λ(∇lse∇lseᵀ + lse·J)
// with |lse| ≤ 3 here).
func lipschitz(p problem, rows int) float64 {
	x2 := float64(rows)
	for _, v := range p.x[:rows*p.N] {
		x2 += v * v
	}
	denom, wmax := float64(rows), 1.0
	for _, w := range p.opts.ClassWeights {
		wmax = max(wmax, w)
	}
	if p.opts.Reduction == graph.Sum {
		denom = 1
	} else if !p.opts.SoftTargets {
		denom = 0
		for _, y := range p.targets[:rows] {
			if !(p.opts.UseIgnoreIndex && int(y) == p.opts.IgnoreIndex) {
				denom += (*rowmath.Options)(&p.opts).Weight(int(y))
			}
		}
		denom = max(denom, math.SmallestNonzeroFloat64)
	}
	return 0.5 * x2 / denom * wmax * (1 + 8*p.opts.ZLoss)
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}

// parallelBadShare: a bad label in one rank's share fails the step on
// every rank (that rank with its error, the others naming it), changes no
// parameters, and the next step runs.
func (s *suite) parallelBadShare(t *testing.T) {
	p := random(41, 7, 4, 5, graph.LossOptions{})
	o := backend.Optimizer{Kind: backend.SGD, LR: 0.1}
	const P, bad = 3, 1
	ls := s.ranks(t, p, graph.Want{DW: true, DB: true}, o, P)
	errs := make([]error, P)
	disttest.Each(P, func(r int) error {
		x, y := share(s.dt, p, 7, r, P)
		if r == bad {
			d := dense.F64(y)
			d[0] = 99
			y = dense.New(s.dt, d, len(d))
		}
		_, errs[r] = ls[r].Step(x, y)
		return nil
	})
	for r, err := range errs {
		var pe *dist.PeerError
		switch {
		case r == bad && (err == nil || errors.As(err, &pe)):
			t.Errorf("rank %d (the bad share): %v, want its own error", r, err)
		case r != bad && (!errors.As(err, &pe) || !slices.Equal(pe.Ranks, []int{bad})):
			t.Errorf("rank %d: %v, want a *dist.PeerError naming rank %d", r, err, bad)
		}
		w, b, _ := ls[r].Params()
		tol.Expect(t, fmt.Sprintf("rank %d's parameters after the failed step", r), append(dense.F64(w), dense.F64(b)...), append(dense.Round(s.dt, p.W), dense.Round(s.dt, p.bias)...), tol.Tol{Why: "unchanged"})
	}
	if err := disttest.Each(P, func(r int) error {
		x, y := share(s.dt, p, 7, r, P)
		_, err := ls[r].Step(x, y)
		return err
	}); err != nil {
		t.Errorf("the step after a failed one: %v", err)
	}
}
