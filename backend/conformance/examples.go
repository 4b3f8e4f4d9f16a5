package conformance

// Worked examples and the softmax's own properties: values quoted by
// hand, rows of very different scale, p − y and the softmax Jacobian.

import (
	"fmt"
	"math"
	"testing"

	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"
)

func (s *suite) workedExamples(t *testing.T) {
	for _, c := range []struct {
		z, want []float64
		tl      tol.Tol
	}{
		{[]float64{1, 2, 3}, []float64{0.0900, 0.2447, 0.6652}, tol.Quoted4},
		// e/(e+e²+e⁵) etc. The issue quotes ≈ [0.02, 0.05, 0.93], rounded so
		// the three sum to 1; to 2 decimals the last is 0.94.
		{[]float64{1, 2, 5}, []float64{0.0171, 0.0466, 0.9362}, tol.Quoted4},
		{[]float64{1000, 2000, 3000}, []float64{0, 0, 1}, tol.Saturated},
		{[]float64{-3000, -2000, -1000}, []float64{0, 0, 1}, tol.Saturated},
	} {
		p, loss := s.softmaxOf(t, c.z, 2)
		tol.Expect(t, fmt.Sprintf("softmax(%v)", c.z), p, c.want, c.tl)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			t.Errorf("softmax(%v): loss %v", c.z, loss)
		}
	}
	// The loss against the least likely class of [1000, 2000, 3000] is exactly
	// 2000 (−log p_0 = 3000 − 1000), finite, not Inf from log(0).
	_, loss := s.softmaxOf(t, []float64{1000, 2000, 3000}, 0)
	tol.Expect(t, "loss of softmax([1000,2000,3000]) at class 0", []float64{loss}, []float64{2000}, tol.For(s.dt))
}

func (s *suite) rowsOfDifferentScale(t *testing.T) {
	// Five rows whose logits differ by 10⁴ in scale: a softmax that takes its
	// maximum from anywhere but the row itself overflows on some of them.
	rows := [][]float64{{1, 2, 3}, {1000, 2000, 3000}, {-1e4, 0, 1e4}, {-3000, -2000, -1000}, {1e-3, 2e-3, 3e-3}}
	p := problem{B: len(rows), N: 3, T: 3, bias: make([]float64, 3), W: []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}}
	for i, r := range rows {
		p.x = append(p.x, r...)
		p.targets = append(p.targets, float64(i%3))
	}
	res, ref := s.compute(t, p)
	s.compare(t, res, ref, graph.Mean)
}

func (s *suite) gradIsPMinusY(t *testing.T) {
	// With plain one-hot targets and Sum, dz = p − y exactly, so db = Σ_i (p_i − y_i)
	// and for B = 1 db = p − y.
	p := random(7, 1, 4, 6, graph.LossOptions{Reduction: graph.Sum})
	res, ref := s.compute(t, p)
	want := append([]float64(nil), ref.P...)
	want[int(p.targets[0])]--
	tol.Expect(t, "db = p − y", dense.F64(res.DB), want, tol.For(s.dt))
	// dW = xᵀ(p − y).
	dW := make([]float64, p.N*p.T)
	x := dense.Round(s.dt, p.x)
	for k := 0; k < p.N; k++ {
		for c := 0; c < p.T; c++ {
			dW[k*p.T+c] = x[k] * want[c]
		}
	}
	tol.Expect(t, "dW = xᵀ(p − y)", dense.F64(res.DW), dW, tol.For(s.dt))
	// Mean over B rows: dW = xᵀ(p − y)/B.
	pm := random(8, 5, 4, 6, graph.LossOptions{})
	resm, refm := s.compute(t, pm)
	dWm := make([]float64, pm.N*pm.T)
	xm := dense.Round(s.dt, pm.x)
	for i := 0; i < pm.B; i++ {
		for c := 0; c < pm.T; c++ {
			g := refm.P[i*pm.T+c]
			if c == int(pm.targets[i]) {
				g--
			}
			for k := 0; k < pm.N; k++ {
				dWm[k*pm.T+c] += xm[i*pm.N+k] * g / float64(pm.B)
			}
		}
	}
	tol.Expect(t, "dW = xᵀ(p − y)/B", dense.F64(resm.DW), dWm, tol.For(s.dt))
}

// softmaxJacobian checks ∂p/∂z = diag(p) − p·pᵀ by central differences of
// the backend's own softmax.
func (s *suite) softmaxJacobian(t *testing.T) {
	z := []float64{0.3, -1.2, 2.0, 0.7}
	T := len(z)
	p, _ := s.softmaxOf(t, z, 0)
	const h = 1e-5
	for j := 0; j < T; j++ {
		zp, zm := append([]float64(nil), z...), append([]float64(nil), z...)
		zp[j] += h
		zm[j] -= h
		pp, _ := s.softmaxOf(t, zp, 0)
		pm, _ := s.softmaxOf(t, zm, 0)
		col, want := make([]float64, T), make([]float64, T)
		for k := 0; k < T; k++ {
			col[k] = (pp[k] - pm[k]) / (2 * h)
			want[k] = -p[k] * p[j]
			if k == j {
				want[k] += p[k]
			}
		}
		tol.Expect(t, fmt.Sprintf("∂p/∂z_%d", j), col, want, tol.FD)
	}
}
