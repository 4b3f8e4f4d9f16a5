package conformance

// The loss options of LLM trainers, worked by hand: logit soft-capping
// (Gemma 2: ẑ = c·tanh(z/c)) and z-loss (PaLM, Liger's lse_square_scale:
// λ·lse² per row), and how the z-loss meets class weights under Mean.

import (
	"fmt"
	"math"
	"testing"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"
)

// oneRow computes a one-row layer whose logits are z exactly (N = 1, x = 1,
// W = z, b = 0) and returns the loss and dz (= db).
func (s *suite) oneRow(t *testing.T, z []float64, y int, o graph.LossOptions) (float64, []float64) {
	t.Helper()
	T := len(z)
	p := problem{B: 1, N: 1, T: T, opts: o, x: []float64{1}, W: z, bias: make([]float64, T), targets: []float64{float64(y)}}
	l := s.open(t, p, graph.Want{DW: true, DB: true}, backend.Optimizer{})
	res, err := l.Compute(dense.New(s.dt, p.x, 1, 1), dense.New(s.dt, p.targets, 1))
	if err != nil {
		t.Fatal(err)
	}
	return res.Loss, dense.F64(res.DB)
}

func (s *suite) llmExamples(t *testing.T) {
	tl := tol.For(s.dt)
	e := math.E
	t.Run("softcap", func(t *testing.T) {
		// c = 2, z = [0, 2·atanh(1/2)]: ẑ = [0, 1]. Against class 0 the loss
		// is log(1 + e); ∂/∂ẑ = p − y = [1/(1+e) − 1, e/(1+e)], and
		// ∂ẑ/∂z = 1 − tanh²(z/c) = [1, 3/4].
		loss, dz := s.oneRow(t, []float64{0, 2 * math.Atanh(0.5)}, 0, graph.LossOptions{Softcap: 2})
		tol.Expect(t, "loss", []float64{loss}, []float64{math.Log(1 + e)}, tl)
		tol.Expect(t, "dz", dz, []float64{1/(1+e) - 1, e / (1 + e) * 0.75}, tl)
		// c = 30 caps [1000, 2000, 3000] to 30·tanh(33.3…) = 30 each (to
		// within 1e-27): the loss is log 3 whatever the label, and the cap's
		// slope, 1 − tanh², is below 1e-27, so the gradient is 0.
		loss, dz = s.oneRow(t, []float64{1000, 2000, 3000}, 0, graph.LossOptions{Softcap: 30})
		tol.Expect(t, "saturated: loss", []float64{loss}, []float64{math.Log(3)}, tl)
		tol.Expect(t, "saturated: dz", dz, make([]float64, 3), tl)
	})
	t.Run("zloss", func(t *testing.T) {
		// λ = 0.1, z = [0, 0], class 0: lse = log 2, loss = log 2 + λ·log²2;
		// dz = p − y + 2λ·lse·p = [−1/2 + λ·log 2, 1/2 + λ·log 2].
		const lambda = 0.1
		l2 := math.Ln2
		loss, dz := s.oneRow(t, []float64{0, 0}, 0, graph.LossOptions{ZLoss: lambda})
		tol.Expect(t, "loss", []float64{loss}, []float64{l2 + lambda*l2*l2}, tl)
		tol.Expect(t, "dz", dz, []float64{-0.5 + lambda*l2, 0.5 + lambda*l2}, tl)
		// With soft-capping the z-loss sees the capped logits: c = 2,
		// z = [0, 2·atanh(1/2)] gives lse = log(1 + e).
		loss, _ = s.oneRow(t, []float64{0, 2 * math.Atanh(0.5)}, 1, graph.LossOptions{ZLoss: lambda, Softcap: 2})
		lse := math.Log(1 + e)
		tol.Expect(t, "with softcap: loss", []float64{loss}, []float64{lse - 1 + lambda*lse*lse}, tl)
	})
	t.Run("zloss+weights", func(t *testing.T) {
		// Two rows, class weights [3, 1], labels [0, 1], λ = 0.2. Row 0:
		// z = [0, 0], lse = log 2, ce = 3·log 2. Row 1: z = [0, log 3],
		// lse = log 4, ce = log 4 − log 3. Under Mean the cross-entropy
		// divides by Σ w_y = 4 and the z-loss by the 2 kept rows (Liger);
		// weighting the z-loss like the cross-entropy would give
		// λ·(3·log²2 + log²4)/4 instead of λ·(log²2 + log²4)/2.
		const lambda = 0.2
		l2, l3, l4 := math.Ln2, math.Log(3), math.Log(4)
		for _, red := range []graph.Reduction{graph.Mean, graph.Sum, graph.None} {
			o := graph.LossOptions{Reduction: red, ClassWeights: []float64{3, 1}, ZLoss: lambda}
			p := problem{B: 2, N: 2, T: 2, opts: o, x: []float64{1, 0, 0, 1}, W: []float64{0, 0, 0, l3}, bias: []float64{0, 0}, targets: []float64{0, 1}}
			l := s.open(t, p, all, backend.Optimizer{})
			res, err := l.Compute(dense.New(s.dt, p.x, 2, 2), dense.New(s.dt, p.targets, 2))
			if err != nil {
				t.Fatal(err)
			}
			rows := []float64{3*l2 + lambda*l2*l2, l4 - l3 + lambda*l4*l4}
			want := rows[0] + rows[1]
			if red == graph.Mean {
				want = (3*l2+l4-l3)/4 + lambda*(l2*l2+l4*l4)/2
			}
			tol.Expect(t, fmt.Sprintf("%v: loss", red), []float64{res.Loss}, []float64{want}, tl)
			if red == graph.None {
				tol.Expect(t, "per-row losses", dense.F64(res.Losses), rows, tl)
			}
		}
	})
	t.Run("zloss+ignore", func(t *testing.T) {
		// An ignored row has no z-loss and no gradient, and Mean's z-loss
		// divides by the one kept row: loss = log 2 + λ·log²2.
		const lambda = 0.5
		o := graph.LossOptions{ZLoss: lambda, UseIgnoreIndex: true, IgnoreIndex: -100}
		p := problem{B: 2, N: 2, T: 2, opts: o, x: []float64{1, 0, 0, 1}, W: []float64{0, 0, 5, -5}, bias: []float64{0, 0}, targets: []float64{1, -100}}
		l := s.open(t, p, all, backend.Optimizer{})
		res, err := l.Compute(dense.New(s.dt, p.x, 2, 2), dense.New(s.dt, p.targets, 2))
		if err != nil {
			t.Fatal(err)
		}
		l2 := math.Ln2
		tol.Expect(t, "loss", []float64{res.Loss}, []float64{l2 + lambda*l2*l2}, tl)
		tol.Expect(t, "dW of the ignored row", dense.F64(res.DW)[2:], []float64{0, 0}, tol.Tol{Why: "an ignored row has no gradient"})
	})
}
