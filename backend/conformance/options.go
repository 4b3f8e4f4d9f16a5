package conformance

// The loss options of torch.nn.CrossEntropyLoss against the reference and
// against finite differences.

import (
	"fmt"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// optionCases covers every loss option and their combinations that matter.
func optionCases(T int) []struct {
	name string
	o    graph.LossOptions
} {
	w := make([]float64, T)
	for c := range w {
		w[c] = 0.25 + float64(c%4)*0.5
	}
	var cases []struct {
		name string
		o    graph.LossOptions
	}
	for _, red := range []graph.Reduction{graph.Mean, graph.Sum, graph.None} {
		for _, o := range []struct {
			name string
			o    graph.LossOptions
		}{
			{"plain", graph.LossOptions{}},
			{"weights", graph.LossOptions{ClassWeights: w}},
			{"ignore", graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: 1}},
			{"ignore-negative", graph.LossOptions{UseIgnoreIndex: true, IgnoreIndex: -100}},
			{"smoothing", graph.LossOptions{LabelSmoothing: 0.1}},
			{"weights+ignore+smoothing", graph.LossOptions{ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: 0, LabelSmoothing: 0.2}},
			{"soft", graph.LossOptions{SoftTargets: true}},
			{"soft+weights+smoothing", graph.LossOptions{SoftTargets: true, ClassWeights: w, LabelSmoothing: 0.3}},
		} {
			o.o.Reduction = red
			cases = append(cases, struct {
				name string
				o    graph.LossOptions
			}{red.String() + "/" + o.name, o.o})
		}
	}
	// The options of LLM trainers, alone and with every other option. The
	// logits are about N(0, 2), so a cap of 1.5 bends most of them.
	for _, red := range []graph.Reduction{graph.Mean, graph.Sum, graph.None} {
		for _, o := range []struct {
			name string
			o    graph.LossOptions
		}{
			{"softcap", graph.LossOptions{Softcap: 1.5}},
			{"zloss", graph.LossOptions{ZLoss: 0.1}},
			// Under Mean the z-loss divides by the kept rows, the
			// cross-entropy by their summed weight.
			{"zloss+weights+ignore", graph.LossOptions{ZLoss: 0.3, ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: 1}},
			{"softcap+zloss+weights+ignore+smoothing", graph.LossOptions{Softcap: 2, ZLoss: 0.05, ClassWeights: w, UseIgnoreIndex: true, IgnoreIndex: 0, LabelSmoothing: 0.2}},
			{"soft+softcap+zloss+weights+smoothing", graph.LossOptions{SoftTargets: true, Softcap: 1, ZLoss: 0.2, ClassWeights: w, LabelSmoothing: 0.3}},
		} {
			o.o.Reduction = red
			cases = append(cases, struct {
				name string
				o    graph.LossOptions
			}{red.String() + "/" + o.name, o.o})
		}
	}
	return cases
}

func (s *suite) options(t *testing.T) {
	const B, N, T = 6, 5, 7
	for i, c := range optionCases(T) {
		t.Run(c.name, func(t *testing.T) {
			p := random(uint64(100+i), B, N, T, c.o)
			res, ref := s.compute(t, p)
			s.compare(t, res, ref, c.o.Reduction)
		})
	}
}

func (s *suite) awkwardSizes(t *testing.T) {
	for _, sz := range []struct{ B, N, T int }{
		{1, 1, 2}, {1, 1, 3}, {1, 3, 2}, {3, 1, 3}, {1, 2, 1000}, {5, 3, 1000}, {2, 2, 8003}, {1, 1, 8003}, {7, 33, 10},
	} {
		for _, o := range []graph.LossOptions{{}, {SoftTargets: true, LabelSmoothing: 0.1}} {
			name := fmt.Sprintf("B=%d,N=%d,T=%d,soft=%v", sz.B, sz.N, sz.T, o.SoftTargets)
			t.Run(name, func(t *testing.T) {
				p := random(uint64(sz.B*1000003+sz.N*1009+sz.T), sz.B, sz.N, sz.T, o)
				res, ref := s.compute(t, p)
				s.compare(t, res, ref, o.Reduction)
			})
		}
	}
}

func (s *suite) allIgnored(t *testing.T) {
	for _, red := range []graph.Reduction{graph.Mean, graph.Sum, graph.None} {
		o := graph.LossOptions{Reduction: red, UseIgnoreIndex: true, IgnoreIndex: -100, LabelSmoothing: 0.1}
		p := random(3, 4, 3, 5, o)
		for i := range p.targets {
			p.targets[i] = -100
		}
		res, _ := s.compute(t, p)
		zero := func(n int) []float64 { return make([]float64, n) }
		// Exactly zero, not merely small: no row contributes anything.
		tol.Expect(t, red.String()+": loss", []float64{res.Loss}, zero(1), tol.Tol{Why: "every row ignored"})
		tol.Expect(t, red.String()+": dW", dense.F64(res.DW), zero(p.N*p.T), tol.Tol{Why: "every row ignored"})
		tol.Expect(t, red.String()+": db", dense.F64(res.DB), zero(p.T), tol.Tol{Why: "every row ignored"})
		tol.Expect(t, red.String()+": dx", dense.F64(res.DX), zero(p.B*p.N), tol.Tol{Why: "every row ignored"})
	}
}

// allWeightZero: under Mean, a batch whose kept rows all have labels of
// class weight 0 has denominator Σ w_y = 0, and, like an all-ignored batch,
// loss 0 and zero gradients rather than 0/0 (PyTorch's NaN), with or
// without label smoothing and ignored rows beside them. Sum and None keep
// the rows' losses (the smoothing terms weigh other classes), as the
// reference says.
func (s *suite) allWeightZero(t *testing.T) {
	w := []float64{0, 1.5, 0, 2, 0}
	for _, o := range []graph.LossOptions{
		{ClassWeights: w},
		{ClassWeights: w, LabelSmoothing: 0.2},
		{ClassWeights: w, LabelSmoothing: 0.2, UseIgnoreIndex: true, IgnoreIndex: 1},
	} {
		for _, red := range []graph.Reduction{graph.Mean, graph.Sum, graph.None} {
			o.Reduction = red
			t.Run(fmt.Sprintf("%v,smoothing=%g,ignore=%v", red, o.LabelSmoothing, o.UseIgnoreIndex), func(t *testing.T) {
				p := random(5, 6, 3, 5, o)
				p.targets = []float64{0, 2, 4, 4, 2, 0} // every label weighs 0
				if o.UseIgnoreIndex {
					p.targets[3] = 1
				}
				res, ref := s.compute(t, p)
				if red != graph.Mean {
					s.compare(t, res, ref, red)
					return
				}
				why := tol.Tol{Why: "Mean over a summed weight of 0 is 0 by rule"}
				tol.Expect(t, "loss", []float64{res.Loss}, []float64{0}, why)
				tol.Expect(t, "dW", dense.F64(res.DW), make([]float64, p.N*p.T), why)
				tol.Expect(t, "db", dense.F64(res.DB), make([]float64, p.T), why)
				tol.Expect(t, "dx", dense.F64(res.DX), make([]float64, p.B*p.N), why)
			})
		}
	}
}

// finiteDifferences checks dW, db and dx against central differences of the
// backend's own loss, for several options.
func (s *suite) finiteDifferences(t *testing.T) {
	for i, c := range optionCases(4) {
		if i%3 != 0 && !strings.Contains(c.name, "weights+ignore") && !strings.Contains(c.name, "soft+") && !llm(c.o) {
			continue // a spread of options keeps this quick
		}
		t.Run(c.name, func(t *testing.T) {
			p := random(uint64(200+i), 3, 3, 4, c.o)
			l := s.open(t, p, all, backend.Optimizer{})
			y := dense.New(s.dt, p.targets, p.targetShape()...)
			base, err := l.Compute(dense.New(s.dt, p.x, p.B, p.N), y)
			if err != nil {
				t.Fatal(err)
			}
			loss := func() float64 {
				if err := l.SetParams(dense.New(s.dt, p.W, p.N, p.T), dense.New(s.dt, p.bias, p.T)); err != nil {
					t.Fatal(err)
				}
				r, err := l.Compute(dense.New(s.dt, p.x, p.B, p.N), y)
				if err != nil {
					t.Fatal(err)
				}
				return r.Loss
			}
			const h = 1e-5
			for _, v := range []struct {
				name string
				vals []float64
				grad *tensor.Dense
			}{{"dW", p.W, base.DW}, {"db", p.bias, base.DB}, {"dx", p.x, base.DX}} {
				fd := make([]float64, len(v.vals))
				for k := range v.vals {
					old := v.vals[k]
					v.vals[k] = old + h
					up := loss()
					v.vals[k] = old - h
					down := loss()
					v.vals[k] = old
					fd[k] = (up - down) / (2 * h)
				}
				tol.Expect(t, v.name+" vs finite differences", dense.F64(v.grad), fd, tol.FD)
			}
		})
	}
}
