package graph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// XentOp is the fused softmax + cross-entropy op: inputs logits (B×T) and
// targets (B class indices stored in the logits' dtype, or B×T probabilities);
// output the reduced loss (a scalar) or, for Reduction None, B per-row losses.
// Its symbolic gradient is XentGradOp. Backends that lower the graph to other
// devices recognise this op (see AsXent) and replace it with a fused kernel.
type XentOp struct {
	Opts LossOptions
	T    int
}

// AsXent returns the options of a node built by SoftmaxCrossEntropy.
func AsXent(n *G.Node) (*XentOp, bool) {
	op, ok := n.Op().(*XentOp)
	return op, ok
}

// SoftmaxCrossEntropy applies the loss to logits (B×T) against targets.
func SoftmaxCrossEntropy(logits, targets *G.Node, opts LossOptions) (*G.Node, error) {
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
	return fmt.Sprintf("SoftmaxXent{%v, soft=%v, ε=%g, ignore=%v:%d, weights=%v}",
		op.Opts.Reduction, op.Opts.SoftTargets, op.Opts.LabelSmoothing, op.Opts.UseIgnoreIndex, op.Opts.IgnoreIndex, op.Opts.ClassWeights != nil)
}

// WriteHash includes the op's address: two loss nodes over the same inputs
// must never be merged (Gorgonia merges nodes of equal hash).
func (op *XentOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s@%p", op, op) }
func (op *XentOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op *XentOp) Do(vals ...G.Value) (G.Value, error) {
	z, tg, err := op.inputs(vals)
	if err != nil {
		return nil, err
	}
	switch zd := z.Data().(type) {
	case []float64:
		return xentDo(op, zd, tg.Data().([]float64), z.Shape()[0])
	case []float32:
		return xentDo(op, zd, tg.Data().([]float32), z.Shape()[0])
	}
	return nil, fmt.Errorf("%v: unsupported dtype %v", op, z.Dtype())
}

func xentDo[F Float](op *XentOp, z, tg []F, rows int) (G.Value, error) {
	if err := CheckTargets(tg, rows, op.T, &op.Opts); err != nil {
		return nil, err
	}
	if op.Opts.Reduction == None {
		out := make([]F, rows)
		Forward(z, tg, rows, op.T, &op.Opts, out)
		return tensor.New(tensor.WithShape(rows), tensor.WithBacking(out)), nil
	}
	sum := Forward(z, tg, rows, op.T, &op.Opts, nil)
	loss := sum * Scale(&op.Opts, Denominator(tg, rows, &op.Opts))
	var zero F
	if _, ok := any(zero).(float32); ok {
		return G.NewF32(float32(loss)), nil
	}
	return G.NewF64(loss), nil
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

func (op *XentGradOp) Do(vals ...G.Value) (G.Value, error) {
	z, _, err := op.Fwd.inputs(vals)
	if err != nil {
		return nil, err
	}
	out := tensor.New(tensor.WithShape(z.Shape().Clone()...), tensor.Of(z.Dtype()))
	return op.UsePreallocDo(out, vals...)
}

// UsePreallocDo lets the VM reuse the B×T gradient buffer across steps.
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
	switch zd := z.Data().(type) {
	case []float64:
		return out, xentGrad(op.Fwd, out.Data().([]float64), zd, tg.Data().([]float64), vals[2], rows)
	case []float32:
		return out, xentGrad(op.Fwd, out.Data().([]float32), zd, tg.Data().([]float32), vals[2], rows)
	}
	return nil, fmt.Errorf("%v: unsupported dtype %v", op, z.Dtype())
}

func xentGrad[F Float](op *XentOp, dz, z, tg []F, g G.Value, rows int) error {
	if err := CheckTargets(tg, rows, op.T, &op.Opts); err != nil {
		return err
	}
	scale := Scale(&op.Opts, Denominator(tg, rows, &op.Opts))
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
	Backward(dz, z, tg, rows, op.T, &op.Opts, scale, rowScale)
	return nil
}
