package graph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"dsx/internal/dense"
	"dsx/internal/rowmath"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// XentOp is the fused softmax + cross-entropy op that SoftmaxCrossEntropy
// applies (its node prints as XentOp{…}): inputs logits (B×T) and targets
// (B class indices stored in the logits' dtype, or B×T probabilities); output
// the reduced loss (a scalar) or, for Reduction None, B per-row losses. Its
// symbolic gradient is XentGradOp. Backends that lower the graph to other
// devices recognise this op (see AsXent) and replace it with a fused kernel.
type XentOp struct {
	Opts LossOptions
	T    int

	// denom and zDenom, when useDenom is set, replace the Mean denominators
	// the op would take from its own rows (see UseBatchDenominators).
	denom, zDenom float64
	useDenom      bool

	// CPU kernel state (see xentCPU): buffers reused across steps, and
	// whether a XentGradOp reads this op's stash.
	hasGrad bool
	c32     *xentCPU[float32]
	c64     *xentCPU[float64]
}

func (op *XentOp) cpu32() *xentCPU[float32] {
	if op.c32 == nil {
		op.c32 = newXentCPU[float32](op)
	}
	return op.c32
}

func (op *XentOp) cpu64() *xentCPU[float64] {
	if op.c64 == nil {
		op.c64 = newXentCPU[float64](op)
	}
	return op.c64
}

// UseBatchDenominators makes the op scale its loss and gradient under
// Reduction Mean by the given denominators, those of a whole batch, instead
// of those of the rows it runs: cross-entropy's (the summed class weight of
// the kept rows) and the z-loss's (the number of kept rows). A backend that
// runs a batch in row chunks calls it before each chunk, so that every
// chunk's loss and gradient are scaled as the whole batch's are, and calls
// the returned function after the chunk to go back to the rows' own.
func (op *XentOp) UseBatchDenominators(denom, zDenom float64) (restore func()) {
	op.denom, op.zDenom, op.useDenom = denom, zDenom, true
	return func() { op.useDenom = false }
}

// AsXent returns the options of a node built by SoftmaxCrossEntropy.
func AsXent(n *G.Node) (*XentOp, bool) {
	op, ok := n.Op().(*XentOp)
	return op, ok
}

// SoftmaxCrossEntropy applies the loss to logits (B×T) against targets.
func SoftmaxCrossEntropy(logits, targets *G.Node, opts LossOptions) (*G.Node, error) {
	if err := checkNodes("softmax cross-entropy", []string{"logits", "targets"}, logits, targets); err != nil {
		return nil, err
	}
	s := logits.Shape()
	if s.Dims() != 2 {
		return nil, fmt.Errorf("softmax cross-entropy: logits have shape %v, want B×T", s)
	}
	T := s[1]
	if err := opts.Validate(T); err != nil {
		return nil, err
	}
	ts := targets.Shape()
	if opts.SoftTargets {
		if ts.Dims() != 2 || ts[0] != s[0] || ts[1] != T {
			return nil, fmt.Errorf("softmax cross-entropy: probability targets have shape %v, want %v", ts, s)
		}
	} else if ts.Dims() != 1 || ts[0] != s[0] {
		return nil, fmt.Errorf("softmax cross-entropy: class-index targets have shape %v, want (%d)", ts, s[0])
	}
	return G.ApplyOp(&XentOp{Opts: opts, T: T}, logits, targets)
}

func (op *XentOp) Arity() int { return 2 }

func (op *XentOp) targetType(a hm.Type) hm.Type {
	if op.Opts.SoftTargets {
		return G.TensorType{Dims: 2, Of: a}
	}
	return G.TensorType{Dims: 1, Of: a}
}

func (op *XentOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	var out hm.Type = a
	if op.Opts.Reduction == None {
		out = G.TensorType{Dims: 1, Of: a}
	}
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, op.targetType(a), out)
}

func (op *XentOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if op.Opts.Reduction != None {
		return tensor.ScalarShape(), nil
	}
	rows, err := in[0].DimSize(0)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{rows}, nil
}

func (op *XentOp) ReturnsPtr() bool     { return false }
func (op *XentOp) CallsExtern() bool    { return false }
func (op *XentOp) OverwritesInput() int { return -1 }
func (op *XentOp) String() string {
	s := fmt.Sprintf("XentOp{%v, soft=%v, ε=%g, ignore=%v:%d, weights=%v",
		op.Opts.Reduction, op.Opts.SoftTargets, op.Opts.LabelSmoothing, op.Opts.UseIgnoreIndex, op.Opts.IgnoreIndex, op.Opts.ClassWeights != nil)
	if op.Opts.Softcap != 0 || op.Opts.ZLoss != 0 {
		s += fmt.Sprintf(", softcap=%g, zloss=%g", op.Opts.Softcap, op.Opts.ZLoss)
	}
	return s + "}"
}

// WriteHash includes the op's address: two loss nodes over the same inputs
// must never be merged (Gorgonia merges nodes of equal hash).
func (op *XentOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s@%p", op, op) }
func (op *XentOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// Do runs the fused forward kernel. Its output (the scalar loss, or the B
// per-row losses) is a value owned by the op and overwritten by the next
// call, as the VM's preallocated values are.
func (op *XentOp) Do(vals ...G.Value) (G.Value, error) {
	z, tg, err := op.inputs(vals)
	if err != nil {
		return nil, err
	}
	rows := z.Shape()[0]
	switch z.Dtype() {
	case tensor.Float64:
		return xentDo(op, op.cpu64(), dense.View[float64](z), dense.View[float64](tg), rows)
	case tensor.Float32:
		return xentDo(op, op.cpu32(), dense.View[float32](z), dense.View[float32](tg), rows)
	}
	return nil, fmt.Errorf("%v: unsupported dtype %v", op, z.Dtype())
}

func xentDo[F dense.Float](op *XentOp, k *xentCPU[F], z, tg []F, rows int) (G.Value, error) {
	if err := rowmath.CheckTargets(tg, rows, op.T, op.Opts.row()); err != nil {
		return nil, err
	}
	sc, sz := scalesOf(op, tg, rows)
	loss, err := k.forward(z, tg, rows, sc, sz)
	if err != nil {
		return nil, err
	}
	if op.Opts.Reduction == None {
		out, back := k.lossTensor(rows)
		for i, l := range k.loss {
			back[i] = F(l)
		}
		return out, nil
	}
	switch s := k.scalar.(type) {
	case *G.F32:
		*s = G.F32(loss)
		return s, nil
	case *G.F64:
		*s = G.F64(loss)
		return s, nil
	}
	var zero F
	if _, ok := any(zero).(float32); ok {
		k.scalar = G.NewF32(float32(loss))
	} else {
		k.scalar = G.NewF64(loss)
	}
	return k.scalar, nil
}

func (op *XentOp) inputs(vals []G.Value) (z, tg tensor.Tensor, err error) {
	if len(vals) < 2 {
		return nil, nil, fmt.Errorf("%v: want logits and targets, got %d inputs", op, len(vals))
	}
	z, ok1 := vals[0].(tensor.Tensor)
	tg, ok2 := vals[1].(tensor.Tensor)
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("%v: inputs must be tensors", op)
	}
	if z.Dtype() != tg.Dtype() {
		return nil, nil, fmt.Errorf("%v: logits are %v, targets %v", op, z.Dtype(), tg.Dtype())
	}
	if z.Shape().Dims() != 2 || z.Shape()[1] != op.T {
		return nil, nil, fmt.Errorf("%v: logits have shape %v, want B×%d", op, z.Shape(), op.T)
	}
	return z, tg, nil
}

// DiffWRT: the loss is differentiable in the logits only.
func (op *XentOp) DiffWRT(inputs int) []bool { return []bool{true, false} }

// SymDiff returns dlogits = XentGradOp(logits, targets, grad).
func (op *XentOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op.hasGrad = true
	dz, err := G.ApplyOp(&XentGradOp{Fwd: op}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz, nil}, nil
}

// XentGradOp computes ∂loss/∂logits (B×T) from logits, targets and the
// upstream gradient (a scalar, or B values for Reduction None), recomputing
// the row's log-sum-exp rather than storing the B×T probabilities.
type XentGradOp struct{ Fwd *XentOp }

func (op *XentGradOp) Arity() int { return 3 }
func (op *XentGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	var g hm.Type = a
	if op.Fwd.Opts.Reduction == None {
		g = G.TensorType{Dims: 1, Of: a}
	}
	m := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(m, op.Fwd.targetType(a), g, m)
}
func (op *XentGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%v: cannot infer shape from %T", op, in[0])
	}
	return s.Clone(), nil
}
func (op *XentGradOp) ReturnsPtr() bool      { return false }
func (op *XentGradOp) CallsExtern() bool     { return false }
func (op *XentGradOp) OverwritesInput() int  { return -1 }
func (op *XentGradOp) String() string        { return "Grad" + op.Fwd.String() }
func (op *XentGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s@%p", op, op.Fwd) }
func (op *XentGradOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// Do computes the gradient into a rows×T buffer owned by the forward op (the
// forward pass's stash of exp(z − max), turned into the gradient in place),
// so that a warm step allocates nothing.
func (op *XentGradOp) Do(vals ...G.Value) (G.Value, error) {
	z, _, err := op.Fwd.inputs(vals)
	if err != nil {
		return nil, err
	}
	rows := z.Shape()[0]
	var out *tensor.Dense
	switch z.Dtype() {
	case tensor.Float32:
		out = op.Fwd.cpu32().gradTensor(rows)
	case tensor.Float64:
		out = op.Fwd.cpu64().gradTensor(rows)
	default:
		return nil, fmt.Errorf("%v: unsupported dtype %v", op, z.Dtype())
	}
	return op.UsePreallocDo(out, vals...)
}

// UsePreallocDo writes the gradient into prealloc.
func (op *XentGradOp) UsePreallocDo(prealloc G.Value, vals ...G.Value) (G.Value, error) {
	if len(vals) != 3 {
		return nil, fmt.Errorf("%v: want 3 inputs, got %d", op, len(vals))
	}
	z, tg, err := op.Fwd.inputs(vals)
	if err != nil {
		return nil, err
	}
	out, ok := prealloc.(tensor.Tensor)
	if !ok || !out.Shape().Eq(z.Shape()) || out.Dtype() != z.Dtype() {
		return nil, fmt.Errorf("%v: bad preallocated output", op)
	}
	rows := z.Shape()[0]
	switch z.Dtype() {
	case tensor.Float64:
		return out, xentGrad(op.Fwd, op.Fwd.cpu64(), dense.View[float64](out), dense.View[float64](z), dense.View[float64](tg), vals[2], rows)
	case tensor.Float32:
		return out, xentGrad(op.Fwd, op.Fwd.cpu32(), dense.View[float32](out), dense.View[float32](z), dense.View[float32](tg), vals[2], rows)
	}
	return nil, fmt.Errorf("%v: unsupported dtype %v", op, z.Dtype())
}

func xentGrad[F dense.Float](op *XentOp, k *xentCPU[F], dz, z, tg []F, g G.Value, rows int) error {
	if err := rowmath.CheckTargets(tg, rows, op.T, op.Opts.row()); err != nil {
		return err
	}
	sc, sz := scalesOf(op, tg, rows)
	scale := 1.0
	var rowScale []F
	switch gv := g.(type) {
	case *G.F64:
		scale *= float64(*gv)
	case *G.F32:
		scale *= float64(*gv)
	case tensor.Tensor:
		if gv.Shape().IsScalar() || gv.Size() == 1 {
			switch d := gv.Data().(type) {
			case float64:
				scale *= d
			case float32:
				scale *= float64(d)
			case []F:
				scale *= float64(d[0])
			}
		} else {
			d, ok := gv.Data().([]F)
			if !ok || len(d) != rows {
				return fmt.Errorf("%v: upstream gradient has shape %v, want (%d)", op, gv.Shape(), rows)
			}
			rowScale = d
		}
	default:
		return fmt.Errorf("%v: upstream gradient of type %T", op, g)
	}
	k.backward(dz, z, tg, rows, sc*scale, sz*scale, rowScale)
	return nil
}

// scalesOf returns the cross-entropy's and the z-loss's scales (rowmath.Scale) for
// the batch's denominators when set (UseBatchDenominators), else for these
// rows' own.
func scalesOf[F dense.Float](op *XentOp, tg []F, rows int) (sc, sz float64) {
	o := op.Opts.row()
	if op.useDenom {
		return rowmath.Scale(o, op.denom), rowmath.Scale(o, op.zDenom)
	}
	return rowmath.Scale(o, rowmath.Denominator(tg, rows, o)), rowmath.Scale(o, rowmath.KeptRows(tg, rows, o))
}
