package cpu

import (
	"fmt"
	"math"
	"slices"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

// optimizer updates W and b in place from their gradients.
type optimizer interface {
	step(w, dw, b, db tensor.Tensor)
	reset()
	// state returns copies of the state; restore sets a copy of s, which
	// kit.CheckOptimizerState has accepted.
	state(cfg backend.Config) backend.OptimizerState
	restore(cfg backend.Config, s backend.OptimizerState)
}

// optim holds SGD-momentum or Adam state for W (nw values) and b (nb).
type optim[F dense.Float] struct {
	o      backend.Optimizer
	t      int    // steps taken (Adam's bias correction)
	m, v   [2][]F // first and second moments (or SGD velocity in m) for W and b
	nw, nb int
}

func newOptim[F dense.Float](o backend.Optimizer, nw, nb int) *optim[F] {
	return &optim[F]{o: o, nw: nw, nb: nb}
}

func (p *optim[F]) reset() {
	p.t = 0
	p.m, p.v = [2][]F{}, [2][]F{}
}

func (p *optim[F]) step(w, dw, b, db tensor.Tensor) {
	p.t++
	p.update(0, dense.View[F](w), dense.View[F](dw))
	p.update(1, dense.View[F](b), dense.View[F](db))
}

// update applies PyTorch's SGD (with momentum and weight decay) or Adam/AdamW
// to one parameter slice.
func (p *optim[F]) update(k int, w, g []F) {
	o := p.o
	lr, wd := o.LR, o.WeightDecay
	switch o.Kind {
	case backend.SGD:
		if o.Momentum == 0 {
			for i := range w {
				gi := float64(g[i]) + wd*float64(w[i])
				w[i] = F(float64(w[i]) - lr*gi)
			}
			return
		}
		if p.m[k] == nil {
			// PyTorch starts the buffer at the first gradient.
			p.m[k] = make([]F, len(w))
			for i := range w {
				p.m[k][i] = F(float64(g[i]) + wd*float64(w[i]))
				w[i] = F(float64(w[i]) - lr*float64(p.m[k][i]))
			}
			return
		}
		v := p.m[k]
		for i := range w {
			gi := float64(g[i]) + wd*float64(w[i])
			v[i] = F(o.Momentum*float64(v[i]) + gi)
			w[i] = F(float64(w[i]) - lr*float64(v[i]))
		}
	case backend.Adam:
		if p.m[k] == nil {
			p.m[k] = make([]F, len(w))
			p.v[k] = make([]F, len(w))
		}
		m, v := p.m[k], p.v[k]
		b1, b2 := o.Beta1, o.Beta2
		c1 := 1 - math.Pow(b1, float64(p.t))
		c2 := 1 - math.Pow(b2, float64(p.t))
		for i := range w {
			wi := float64(w[i])
			gi := float64(g[i])
			if o.Decoupled {
				wi -= lr * wd * wi
			} else {
				gi += wd * wi
			}
			mi := b1*float64(m[i]) + (1-b1)*gi
			vi := b2*float64(v[i]) + (1-b2)*gi*gi
			m[i], v[i] = F(mi), F(vi)
			w[i] = F(wi - lr*(mi/c1)/(math.Sqrt(vi/c2)+o.Eps))
		}
	}
}

// slot is the pair (W's, b's) of m or v that holds a state tensor.
func (p *optim[F]) slot(st backend.StateTensor) *[2][]F {
	if st.Slot == backend.ExpAvgSq {
		return &p.v
	}
	return &p.m // SGD's momentum buffer or Adam's first moment
}

func paramIndex(st backend.StateTensor) int {
	if st.Param == "b" {
		return 1
	}
	return 0
}

func (p *optim[F]) state(cfg backend.Config) backend.OptimizerState {
	s := backend.OptimizerState{Kind: p.o.Kind, Step: p.t}
	for _, st := range backend.OptimizerTensors(cfg) {
		d := p.slot(st)[paramIndex(st)]
		if d == nil {
			continue // not made yet: no step taken since the reset
		}
		if s.Tensors == nil {
			s.Tensors = map[string]*tensor.Dense{}
		}
		s.Tensors[st.Name] = tensor.New(tensor.WithShape(st.Shape...), tensor.WithBacking(slices.Clone(d)))
	}
	return s
}

func (p *optim[F]) restore(cfg backend.Config, s backend.OptimizerState) {
	p.reset()
	p.t = s.Step
	for _, st := range backend.OptimizerTensors(cfg) {
		if t := s.Tensors[st.Name]; t != nil {
			if t.RequiresIterator() { // a view: its elements in order
				t = t.Materialize().(*tensor.Dense)
			}
			p.slot(st)[paramIndex(st)] = slices.Clone(dense.View[F](t))
		}
	}
}

// OptimizerState and SetOptimizerState: backend.Layer's.
func (l *layer) OptimizerState() (backend.OptimizerState, error) {
	if err := l.check(); err != nil {
		return backend.OptimizerState{}, err
	}
	return l.opt.state(l.cfg), nil
}

func (l *layer) SetOptimizerState(s backend.OptimizerState) error {
	if err := l.check(); err != nil {
		return err
	}
	if err := kit.CheckOptimizerState(l.cfg, s); err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	l.opt.restore(l.cfg, s)
	return nil
}
