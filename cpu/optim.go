package cpu

import (
	"math"

	"dsx/backend"
	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

// optimizer updates W and b in place from their gradients.
type optimizer interface {
	step(w, dw, b, db tensor.Tensor)
	reset()
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
