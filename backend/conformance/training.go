package conformance

// Repeated runs, smaller batches and optimizer steps.

import (
	"fmt"
	"math"
	"testing"

	"dsx/backend"
	"dsx/cpu"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"
)

func (s *suite) repeatAndSmallerBatch(t *testing.T) {
	// Gradients must not accumulate across runs, and a smaller last batch
	// must give the smaller problem's answer.
	p := random(11, 8, 4, 5, graph.LossOptions{})
	l := s.open(t, p, all, backend.Optimizer{})
	x, y := dense.New(s.dt, p.x, p.B, p.N), dense.New(s.dt, p.targets, p.B)
	r1, err := l.Compute(x, y)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Compute(x, y)
	if err != nil {
		t.Fatal(err)
	}
	tol.Expect(t, "second run dW", dense.F64(r2.DW), dense.F64(r1.DW), tol.For(s.dt))
	small := p
	small.B = 3
	small.x, small.targets = p.x[:3*p.N], p.targets[:3]
	r3, err := l.Compute(dense.New(s.dt, small.x, 3, p.N), dense.New(s.dt, small.targets, 3))
	if err != nil {
		t.Fatal(err)
	}
	ref := cpu.Reference(dense.Round(s.dt, small.x), dense.Round(s.dt, p.W), dense.Round(s.dt, p.bias), small.targets, 3, p.N, p.T, p.opts)
	s.compare(t, r3, ref, graph.Mean)
	logits, err := l.Logits(dense.New(s.dt, small.x, 3, p.N))
	if err != nil {
		t.Fatal(err)
	}
	tol.Expect(t, "logits", dense.F64(logits), ref.Logits, tol.For(s.dt))
}

// optimizers checks two steps of each optimizer against PyTorch's formulas
// applied in float64 to the gradients of the reference.
func (s *suite) optimizers(t *testing.T) {
	for _, o := range []backend.Optimizer{
		{Kind: backend.SGD, LR: 0.1},
		{Kind: backend.SGD, LR: 0.1, Momentum: 0.9, WeightDecay: 0.01},
		{Kind: backend.Adam, LR: 0.01, WeightDecay: 0.01},
		{Kind: backend.Adam, LR: 0.01, WeightDecay: 0.1, Decoupled: true},
	} {
		t.Run(fmt.Sprintf("%s,m=%g,wd=%g,decoupled=%v", o.Kind, o.Momentum, o.WeightDecay, o.Decoupled), func(t *testing.T) {
			p := random(21, 6, 4, 5, graph.LossOptions{})
			l := s.open(t, p, graph.Want{DW: true, DB: true}, o)
			x, y := dense.New(s.dt, p.x, p.B, p.N), dense.New(s.dt, p.targets, p.B)
			w, b := dense.Round(s.dt, p.W), dense.Round(s.dt, p.bias)
			o := o.WithDefaults()
			var mw, vw, mb, vb []float64
			for step := 1; step <= 2; step++ {
				ref := cpu.Reference(dense.Round(s.dt, p.x), w, b, p.targets, p.B, p.N, p.T, p.opts)
				loss, err := l.Step(x, y)
				if err != nil {
					t.Fatal(err)
				}
				tol.Expect(t, fmt.Sprintf("step %d loss", step), []float64{loss}, []float64{ref.Loss}, tol.For(s.dt))
				mw, vw = refUpdate(o, step, w, ref.DW, mw, vw)
				mb, vb = refUpdate(o, step, b, ref.DB, mb, vb)
			}
			gw, gb, err := l.Params()
			if err != nil {
				t.Fatal(err)
			}
			tol.Expect(t, "W after 2 steps", dense.F64(gw), w, tol.For(s.dt))
			tol.Expect(t, "b after 2 steps", dense.F64(gb), b, tol.For(s.dt))
		})
	}
}

// refUpdate is torch.optim.SGD / Adam / AdamW written out in float64.
func refUpdate(o backend.Optimizer, step int, w, g, m, v []float64) ([]float64, []float64) {
	if m == nil {
		m, v = make([]float64, len(w)), make([]float64, len(w))
	}
	for i := range w {
		gi := g[i]
		switch o.Kind {
		case backend.SGD:
			gi += o.WeightDecay * w[i]
			if o.Momentum != 0 {
				if step == 1 {
					m[i] = gi
				} else {
					m[i] = o.Momentum*m[i] + gi
				}
				gi = m[i]
			}
			w[i] -= o.LR * gi
		case backend.Adam:
			if o.Decoupled {
				w[i] *= 1 - o.LR*o.WeightDecay
			} else {
				gi += o.WeightDecay * w[i]
			}
			m[i] = o.Beta1*m[i] + (1-o.Beta1)*gi
			v[i] = o.Beta2*v[i] + (1-o.Beta2)*gi*gi
			mh := m[i] / (1 - math.Pow(o.Beta1, float64(step)))
			vh := v[i] / (1 - math.Pow(o.Beta2, float64(step)))
			w[i] -= o.LR * mh / (math.Sqrt(vh) + o.Eps)
		}
	}
	return m, v
}
