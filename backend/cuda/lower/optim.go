package lower

import (
	"fmt"
	"math"

	"dsx/backend"
	k "dsx/cudakernels"
)

// optimStep updates one parameter (W or b) from its gradient on the device
// (optim.cu): SGD with momentum, or Adam/AdamW with the bias correction of
// step Ctx.Iter.
type optimStep struct {
	f32      bool
	o        backend.Optimizer
	w, g     *Buffer
	m, v     *Buffer // SGD: m is the velocity (nil without momentum); Adam: the moments
	w16      *Buffer // W's bfloat16 copy the step rewrites (bfloat16 storage), or nil
	elements int
}

func (s *optimStep) Kernel() string {
	if s.o.Kind == backend.SGD {
		return "sgd" + suffix(s.f32)
	}
	return "adam" + suffix(s.f32)
}

func (s *optimStep) NewArgs() any {
	if s.o.Kind == backend.SGD {
		return new(k.SGD)
	}
	return new(k.Adam)
}

func (s *optimStep) Describe() string {
	d := fmt.Sprintf("%s: %s from %s", s.Kernel(), s.w.What, s.g.What)
	if s.w16 != nil {
		d += ", and " + s.w16.What
	}
	return d
}

func (s *optimStep) Dims(Ctx) Dims {
	return Dims{GridX: min(ceilDiv(s.elements, 256), 4096), GridY: 1, BlockX: 256, BlockY: 1}
}

func (s *optimStep) Fill(args any, a Addr, c Ctx) {
	o, n := s.o, int64(s.elements)
	if o.Kind == backend.SGD {
		*args.(*k.SGD) = k.SGD{W: a(s.w), G: a(s.g), V: at(a, s.m, 0), N: n, LR: o.LR, Momentum: o.Momentum, WD: o.WeightDecay,
			W16: at(a, s.w16, 0)}
		return
	}
	dec := int64(0)
	if o.Decoupled {
		dec = 1
	}
	*args.(*k.Adam) = k.Adam{W: a(s.w), G: a(s.g), M: a(s.m), V: a(s.v), N: n, LR: o.LR, B1: o.Beta1, B2: o.Beta2,
		Eps: o.Eps, WD: o.WeightDecay, Decoupled: dec,
		BC1: 1 - math.Pow(o.Beta1, float64(c.Iter)), BC2: 1 - math.Pow(o.Beta2, float64(c.Iter)), W16: at(a, s.w16, 0)}
}

// StateBuffer is one buffer of the optimizer's state: Buf holds the
// backend.OptimizerTensors entry Tensor.
type StateBuffer struct {
	Tensor backend.StateTensor
	Buf    *Buffer
}

// optimizer adds the optimizer's state buffers and its two steps (W, then
// b); none without an optimizer.
func (lw *lowerer) optimizer(l *Program) {
	o := lw.cfg.Optimizer
	if o.Kind == backend.NoOptimizer || l.Train.DW == nil || l.Train.DB == nil {
		return // Step is an error without an optimizer or without dW and db
	}
	params := map[string]*optimStep{}
	for _, p := range []struct {
		name string
		w, g *Buffer
		n    int
	}{{"W", l.W, l.Train.DW, lw.cfg.N * lw.cfg.T}, {"b", l.Bias, l.Train.DB, lw.cfg.T}} {
		st := &optimStep{f32: lw.f32, o: o, w: p.w, g: p.g, elements: p.n}
		if p.name == "W" {
			st.w16 = l.W16
		}
		params[p.name] = st
		l.Optim = append(l.Optim, &Step{Phase: Post, Op: st})
	}
	// The state: SGD's velocity (none without momentum) in m; Adam's
	// moments in m and v.
	for _, t := range backend.OptimizerTensors(lw.cfg) {
		st := params[t.Param]
		what := map[string]string{backend.MomentumBuffer: "SGD velocity", backend.ExpAvg: "Adam m", backend.ExpAvgSq: "Adam v"}[t.Slot]
		b := lw.request(fmt.Sprintf("%s of %s (%s)", what, t.Param, t.Name), int64(st.elements)*lw.esize)
		b.Cat = State
		l.OptimState = append(l.OptimState, StateBuffer{Tensor: t, Buf: b})
		if t.Slot == backend.ExpAvgSq {
			st.v = b
		} else {
			st.m = b
		}
	}
}
