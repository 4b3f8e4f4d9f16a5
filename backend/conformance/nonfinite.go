package conformance

// NaN and ±Inf: a batch whose logits are not finite is an error that names
// the row and what is to blame, and loses nothing (the parameters and the
// optimizer state stay as they were); SetParams refuses non-finite values.

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// checkNonFinite checks that err is a *graph.NonFiniteError for batch row
// row (wrapping backend.ErrNonFinite) whose text mentions want.
func checkNonFinite(t *testing.T, what string, err error, row int, want string) {
	t.Helper()
	var nf *graph.NonFiniteError
	switch {
	case err == nil:
		t.Errorf("%s: no error", what)
		return
	case !errors.Is(err, backend.ErrNonFinite) || !errors.As(err, &nf):
		t.Errorf("%s: error %q (%T) does not wrap ErrNonFinite as a *graph.NonFiniteError", what, err, err)
		return
	case nf.Row != row:
		t.Errorf("%s: error names row %d, want %d: %v", what, nf.Row, row, err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q does not say %q", what, err, want)
	}
	checkPlain(t, what, err)
}

func (s *suite) nonFinite(t *testing.T) {
	o := graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: -100}
	p := random(41, 6, 3, 5, o) // row 3 is ignored
	opt := backend.Optimizer{Kind: backend.Adam, LR: 0.01}
	l := s.open(t, p, graph.Want{DW: true, DB: true}, opt)
	x, y := dense.New(s.dt, p.x, p.B, p.N), dense.New(s.dt, p.targets, p.B)
	if _, err := l.Step(x, y); err != nil { // the optimizer has state now
		t.Fatal(err)
	}
	W1, b1, err := l.Params()
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		W, b, err := l.Params()
		if err != nil {
			t.Fatal(err)
		}
		tol.Expect(t, what+": W", dense.F64(W), dense.F64(W1), tol.Tol{Why: "a failed call changes nothing"})
		tol.Expect(t, what+": b", dense.F64(b), dense.F64(b1), tol.Tol{Why: "a failed call changes nothing"})
	}
	for _, c := range []struct {
		row, col int
		v        float64
	}{
		{1, 2, math.NaN()}, {4, 0, math.Inf(1)}, {5, 1, math.Inf(-1)},
		{3, 0, math.NaN()}, // an ignored row: its x would still reach dW
	} {
		bad := append([]float64(nil), p.x...)
		bad[c.row*p.N+c.col] = c.v
		xb := dense.New(s.dt, bad, p.B, p.N)
		want := fmt.Sprintf("x[%d, %d] is %v", c.row, c.col, c.v)
		_, err := l.Compute(xb, y)
		checkNonFinite(t, "Compute: "+want, err, c.row, want)
		_, err = l.Step(xb, y)
		checkNonFinite(t, "Step: "+want, err, c.row, want)
		unchanged("after Step with " + want)
	}
	// The failed steps left the optimizer state alone too: one more good
	// step matches two good steps on a fresh layer.
	if _, err := l.Step(x, y); err != nil {
		t.Fatal(err)
	}
	f := s.open(t, p, graph.Want{DW: true, DB: true}, opt)
	for i := 0; i < 2; i++ {
		if _, err := f.Step(x, y); err != nil {
			t.Fatal(err)
		}
	}
	gw, gb, _ := l.Params()
	fw, fb, _ := f.Params()
	tol.Expect(t, "W after failed steps", dense.F64(gw), dense.F64(fw), tol.For(s.dt))
	tol.Expect(t, "b after failed steps", dense.F64(gb), dense.F64(fb), tol.For(s.dt))

	// SetParams refuses NaN and ±Inf and keeps what the layer had.
	W1, b1, _ = l.Params()
	for _, c := range []struct {
		w, b []float64
		want string
	}{
		{withAt(p.W, 7, math.NaN()), p.bias, fmt.Sprintf("W[%d, %d] is NaN", 7/p.T, 7%p.T)},
		{p.W, withAt(p.bias, 2, math.Inf(-1)), "b[2] is -Inf"},
	} {
		err := l.SetParams(dense.New(s.dt, c.w, p.N, p.T), dense.New(s.dt, c.b, p.T))
		if !errors.Is(err, backend.ErrNonFinite) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SetParams with %s: error %v", c.want, err)
		}
		unchanged("after SetParams with " + c.want)
	}
}

// overflow: finite x and parameters whose product overflows the dtype are
// to blame on neither; a float64 loss that overflows with finite logits is
// an error too.
func (s *suite) overflow(t *testing.T) {
	big := math.MaxFloat64 / 10
	if s.dt == tensor.Float32 {
		big = math.MaxFloat32 / 10
	}
	p := random(43, 4, 3, 5, graph.LossOptions{})
	for i := range p.x {
		p.x[i] = 1
	}
	p.x[2*p.N+1] = 100 // row 2: 102·big overflows
	for _, c := range []struct {
		name string
		w0   float64 // W[k, 0]; the other classes' weights stay small
		want string
	}{
		// +Inf and −Inf: the row's Σ exp(z − m) is NaN.
		{"every logit overflowing", big, "logit of class 0 is +Inf"},
		// One logit −Inf, the others finite, at the row's label: the loss
		// −log p_0 is +Inf. (Elsewhere it would be p = 0 and no error.)
		{"the label's logit overflowing to -Inf", -big, "logit of class 0 is -Inf"},
	} {
		q := p
		q.W = append([]float64(nil), p.W...)
		for k := 0; k < q.N; k++ {
			q.W[k*q.T] = c.w0
			if c.w0 > 0 {
				for j := 1; j < q.T; j++ {
					q.W[k*q.T+j] = -big
				}
			}
		}
		q.targets = []float64{1, 2, 0, 4}
		l := s.open(t, q, all, backend.Optimizer{})
		_, err := l.Compute(dense.New(s.dt, q.x, q.B, q.N), dense.New(s.dt, q.targets, q.B))
		checkNonFinite(t, c.name, err, 2, c.want+" although x and the parameters are finite: x·W + b overflows "+s.dt.String())
	}
	if s.dt != tensor.Float64 {
		return // float32 logits cannot overflow the float64 loss
	}
	// Logits ±1e308 are finite; the loss m − z_y = 2e308 is not.
	q := problem{B: 1, N: 1, T: 2, x: []float64{1}, W: []float64{1e308, -1e308}, bias: []float64{0, 0}, targets: []float64{1}}
	l := s.open(t, q, all, backend.Optimizer{})
	_, err := l.Compute(dense.New(s.dt, q.x, 1, 1), dense.New(s.dt, q.targets, 1))
	checkNonFinite(t, "loss overflowing", err, 0, "loss is not finite")
}

func withAt(v []float64, i int, x float64) []float64 {
	out := append([]float64(nil), v...)
	out[i] = x
	return out
}
