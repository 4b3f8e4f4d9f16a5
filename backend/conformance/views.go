package conformance

// Views: tensors that are views into larger ones (a column slice, a row
// slice at an offset, a transpose) are read as the values they show at
// every entry point, never as their backing array.

import (
	"math"
	"testing"

	"dsx/backend"
	"dsx/cpu"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// garbage fills what views leave out: finite, and far from every value a
// view shows, so that reading it changes every result.
const garbage = 7.5

// viewKinds are the ways a rows×cols matrix of values v is given: plain,
// a column slice of a wider matrix, a row slice at an offset of a taller
// one, and the transpose of its transpose.
var viewKinds = []string{"plain", "columns", "rows", "transposed"}

// matrixAs returns v (rows×cols) as a tensor of dtype dt made as kind
// says; every kind but plain is a view whose backing array holds garbage
// (or, transposed, the values in another order).
func matrixAs(t *testing.T, dt tensor.Dtype, kind string, v []float64, rows, cols int) *tensor.Dense {
	t.Helper()
	var big *tensor.Dense
	var view tensor.View
	var err error
	switch kind {
	case "plain":
		return dense.New(dt, v, rows, cols)
	case "columns": // rows×(cols+3), the first cols columns
		w := make([]float64, rows*(cols+3))
		for i := range w {
			w[i] = garbage
		}
		for r := 0; r < rows; r++ {
			copy(w[r*(cols+3):], v[r*cols:(r+1)*cols])
		}
		big = dense.New(dt, w, rows, cols+3)
		view, err = big.Slice(nil, tensor.S(0, cols))
	case "rows": // (rows+3)×cols, rows 2..rows+1
		w := make([]float64, (rows+3)*cols)
		for i := range w {
			w[i] = garbage
		}
		copy(w[2*cols:], v)
		big = dense.New(dt, w, rows+3, cols)
		view, err = big.Slice(tensor.S(2, rows+2))
	case "transposed": // cols×rows, transposed
		w := make([]float64, rows*cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				w[c*rows+r] = v[r*cols+c]
			}
		}
		big = dense.New(dt, w, cols, rows)
		if err = big.T(); err != nil {
			t.Fatal(err)
		}
		return big
	}
	if err != nil {
		t.Fatalf("%s view: %v", kind, err)
	}
	d := view.(*tensor.Dense)
	if s := d.Shape(); s.Dims() != 2 || s[0] != rows || s[1] != cols {
		t.Fatalf("%s view has shape %v, want %d×%d", kind, s, rows, cols)
	}
	return d
}

// vectorAs returns v as a vector of dtype dt: plain, a slice at an offset
// of a longer one, or a column of a matrix (stride 2).
func vectorAs(t *testing.T, dt tensor.Dtype, kind string, v []float64) *tensor.Dense {
	t.Helper()
	n := len(v)
	switch kind {
	case "rows": // a slice at an offset
		w := append(append([]float64{garbage, garbage}, v...), garbage)
		view, err := dense.New(dt, w, n+3).Slice(tensor.S(2, n+2))
		if err != nil {
			t.Fatal(err)
		}
		return view.(*tensor.Dense)
	case "columns", "transposed": // a column of n×2: stride 2
		w := make([]float64, 2*n)
		for i, x := range v {
			w[2*i], w[2*i+1] = x, garbage
		}
		view, err := dense.New(dt, w, n, 2).Slice(nil, tensor.S(0))
		if err != nil {
			t.Fatal(err)
		}
		d := view.(*tensor.Dense)
		if s := d.Shape(); s.Dims() != 1 || s[0] != n {
			t.Fatalf("column view has shape %v, want (%d)", s, n)
		}
		return d
	}
	return dense.New(dt, v, n)
}

// targetsAs gives p's targets as kind says.
func targetsAs(t *testing.T, dt tensor.Dtype, kind string, p problem) *tensor.Dense {
	if p.opts.SoftTargets {
		return matrixAs(t, dt, kind, p.targets, p.B, p.T)
	}
	return vectorAs(t, dt, kind, p.targets)
}

// views runs Compute, Step, Logits and SetParams with every input a view
// of each kind and checks the results against the reference on the values
// the views show (and, for Step, against a step on plain tensors).
func (s *suite) views(t *testing.T) {
	for _, opts := range []graph.LossOptions{{}, {SoftTargets: true}} {
		p := random(41, 5, 4, 6, opts)
		ref := cpu.Reference(dense.Round(s.dt, p.x), dense.Round(s.dt, p.W), dense.Round(s.dt, p.bias), dense.Round(s.dt, p.targets), p.B, p.N, p.T, p.opts)
		for _, kind := range viewKinds {
			name := kind
			if opts.SoftTargets {
				name += "/soft"
			}
			t.Run(name, func(t *testing.T) {
				cfg := backend.Config{Spec: graph.Spec{B: p.B, N: p.N, T: p.T, DType: s.dt, Loss: p.opts, Want: all},
					Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 0.5}, ChunkRows: s.chunk, Xent: s.xent}
				open := func() backend.Layer {
					l, err := s.b.Open(cfg)
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					t.Cleanup(func() { l.Close() })
					return l
				}
				l := open()
				W, b := matrixAs(t, s.dt, kind, p.W, p.N, p.T), vectorAs(t, s.dt, kind, p.bias)
				if err := l.SetParams(W, b); err != nil {
					t.Fatalf("SetParams: %v", err)
				}
				tl := tol.For(s.dt)
				// The parameters as set are the values the views show.
				gotW, gotB, err := l.Params()
				if err != nil {
					t.Fatal(err)
				}
				tol.Expect(t, "W after SetParams", dense.F64(gotW), dense.Round(s.dt, p.W), tol.Exact)
				tol.Expect(t, "b after SetParams", dense.F64(gotB), dense.Round(s.dt, p.bias), tol.Exact)
				if kind == "columns" {
					// NaN where the view does not look: not the view's values.
					wn := make([]float64, p.N*(p.T+1))
					for r := 0; r < p.N; r++ {
						copy(wn[r*(p.T+1):], p.W[r*p.T:(r+1)*p.T])
						wn[r*(p.T+1)+p.T] = math.NaN()
					}
					v, err := dense.New(s.dt, wn, p.N, p.T+1).Slice(nil, tensor.S(0, p.T))
					if err != nil {
						t.Fatal(err)
					}
					if err := l.SetParams(v.(*tensor.Dense), b); err != nil {
						t.Errorf("SetParams of a view with NaN outside it: %v", err)
					}
				}
				x, y := matrixAs(t, s.dt, kind, p.x, p.B, p.N), targetsAs(t, s.dt, kind, p)
				res, err := l.Compute(x, y)
				if err != nil {
					t.Fatalf("Compute: %v", err)
				}
				s.compare(t, res, ref, graph.Mean)
				z, err := l.Logits(x)
				if err != nil {
					t.Fatalf("Logits: %v", err)
				}
				tol.Expect(t, "logits", dense.F64(z), ref.Logits, tl)
				// A step on views moves the parameters as a step on plain
				// tensors does.
				plain := open()
				if err := plain.SetParams(dense.New(s.dt, p.W, p.N, p.T), dense.New(s.dt, p.bias, p.T)); err != nil {
					t.Fatal(err)
				}
				lv, err := l.Step(x, y)
				if err != nil {
					t.Fatalf("Step: %v", err)
				}
				lp, err := plain.Step(dense.New(s.dt, p.x, p.B, p.N), dense.New(s.dt, p.targets, p.targetShape()...))
				if err != nil {
					t.Fatal(err)
				}
				tol.Expect(t, "Step loss", []float64{lv}, []float64{lp}, tl)
				wv, bv, _ := l.Params()
				wp, bp, _ := plain.Params()
				tol.Expect(t, "W after Step", dense.F64(wv), dense.F64(wp), tl)
				tol.Expect(t, "b after Step", dense.F64(bv), dense.F64(bp), tl)
			})
		}
	}
}
