package lower

import (
	"fmt"

	k "dsx/cudakernels"
)

// The unfused softmax-cross-entropy (backend.Config.Xent = backend.Unfused), as
// PyTorch eager runs it: log_softmax into a second rows×T buffer, nll, then
// for the gradient nll_grad over the logits and log_softmax_grad in place.

type logSoftmax struct {
	f32         bool
	z, lp, bias *Buffer
	T           int
}

func (s *logSoftmax) Kernel() string { return "log_softmax" + suffix(s.f32) }
func (s *logSoftmax) NewArgs() any   { return new(k.LogSoftmax) }
func (s *logSoftmax) Describe() string {
	return fmt.Sprintf("%s: %s → %s", s.Kernel(), s.z.What, s.lp.What)
}
func (s *logSoftmax) Dims(c Ctx) Dims {
	return Dims{GridX: c.Rows, GridY: 1, BlockX: RowThreads(s.T), BlockY: 1}
}
func (s *logSoftmax) Fill(args any, a Addr, c Ctx) {
	*args.(*k.LogSoftmax) = k.LogSoftmax{Z: at(a, s.z, c.R0), LP: at(a, s.lp, c.R0), Rows: int64(c.Rows), T: int64(s.T), Bias: at(a, s.bias, 0)}
}

type nll struct {
	f32                               bool
	lp, tg, w, rowloss, losses, scale *Buffer
	T                                 int
	flags, ignore                     int64
}

func (s *nll) Kernel() string { return "nll" + suffix(s.f32) }
func (s *nll) NewArgs() any   { return new(k.NLL) }
func (s *nll) Describe() string {
	return fmt.Sprintf("%s: %s → %s", s.Kernel(), s.lp.What, s.rowloss.What)
}
func (s *nll) Dims(c Ctx) Dims {
	return Dims{GridX: ceilDiv(c.Rows, 256), GridY: 1, BlockX: 256, BlockY: 1}
}
func (s *nll) Fill(args any, a Addr, c Ctx) {
	*args.(*k.NLL) = k.NLL{LP: at(a, s.lp, c.R0), Tg: at(a, s.tg, c.R0), W: at(a, s.w, 0), RowLoss: at(a, s.rowloss, c.R0),
		Losses: at(a, s.losses, c.R0), ScaleP: a(s.scale), Rows: int64(c.Rows), T: int64(s.T), Flags: s.flags, Ignore: s.ignore}
}

type nllGrad struct {
	f32             bool
	g, tg, w, scale *Buffer
	T               int
	flags, ignore   int64
	gscale          float64
}

func (s *nllGrad) Kernel() string   { return "nll_grad" + suffix(s.f32) }
func (s *nllGrad) NewArgs() any     { return new(k.NLLGrad) }
func (s *nllGrad) Describe() string { return fmt.Sprintf("%s → %s", s.Kernel(), s.g.What) }
func (s *nllGrad) Dims(c Ctx) Dims {
	return Dims{GridX: min(ceilDiv(c.Rows*s.T, 256), 1<<16), GridY: 1, BlockX: 256, BlockY: 1}
}
func (s *nllGrad) Fill(args any, a Addr, c Ctx) {
	*args.(*k.NLLGrad) = k.NLLGrad{G: at(a, s.g, c.R0), Tg: at(a, s.tg, c.R0), W: at(a, s.w, 0), ScaleP: a(s.scale),
		Rows: int64(c.Rows), T: int64(s.T), Flags: s.flags, Ignore: s.ignore, GScale: s.gscale}
}

type logSoftmaxGrad struct {
	f32   bool
	g, lp *Buffer
	T     int
}

func (s *logSoftmaxGrad) Kernel() string { return "log_softmax_grad" + suffix(s.f32) }
func (s *logSoftmaxGrad) NewArgs() any   { return new(k.LogSoftmaxGrad) }
func (s *logSoftmaxGrad) Describe() string {
	return fmt.Sprintf("%s: %s in place, from %s", s.Kernel(), s.g.What, s.lp.What)
}
func (s *logSoftmaxGrad) Dims(c Ctx) Dims {
	return Dims{GridX: c.Rows, GridY: 1, BlockX: RowThreads(s.T), BlockY: 1}
}
func (s *logSoftmaxGrad) Fill(args any, a Addr, c Ctx) {
	*args.(*k.LogSoftmaxGrad) = k.LogSoftmaxGrad{G: at(a, s.g, c.R0), LP: at(a, s.lp, c.R0), Rows: int64(c.Rows), T: int64(s.T)}
}
