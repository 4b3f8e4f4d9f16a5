package graph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"dsx/internal/dense"
	"dsx/internal/pool"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BiasAddOp adds a bias b (T) to every row of a (rows×T). Gorgonia's
// BroadcastAdd would first repeat b into a full rows×T tensor (a copy as
// large as the logits) and then add; this op reads b once per row and adds
// it in place when the VM lets it overwrite a (UnsafeDo), else into the
// preallocated output. Its gradient is the upstream gradient itself for a
// and ColSumOp of it for b.
type BiasAddOp struct{}

// BiasAdd returns a + b broadcast over a's rows.
func BiasAdd(a, b *G.Node) (*G.Node, error) {
	if err := checkNodes("bias add", []string{"a", "b"}, a, b); err != nil {
		return nil, err
	}
	as, bs := a.Shape(), b.Shape()
	if as.Dims() != 2 || bs.Dims() != 1 || as[1] != bs[0] {
		return nil, fmt.Errorf("bias add: shapes %v and %v, want rows×T and (T)", as, bs)
	}
	return G.ApplyOp(BiasAddOp{}, a, b)
}

func (BiasAddOp) Arity() int { return 2 }
func (BiasAddOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(m, G.TensorType{Dims: 1, Of: a}, m)
}
func (BiasAddOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("bias add: cannot infer a shape from %T", in[0])
	}
	return s.Clone(), nil
}
func (BiasAddOp) ReturnsPtr() bool      { return false }
func (BiasAddOp) CallsExtern() bool     { return false }
func (BiasAddOp) OverwritesInput() int  { return 0 }
func (BiasAddOp) String() string        { return "BiasAdd" }
func (BiasAddOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "BiasAdd") }
func (op BiasAddOp) Hashcode() uint32   { return hashOf(op) }

func hashOf(op G.Op) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// inputs checks a (rows×T) and b (T) of one dtype.
func biasInputs(vals []G.Value) (a, b tensor.Tensor, err error) {
	if len(vals) != 2 {
		return nil, nil, fmt.Errorf("bias add: want 2 inputs, got %d", len(vals))
	}
	a, ok1 := vals[0].(tensor.Tensor)
	b, ok2 := vals[1].(tensor.Tensor)
	if !ok1 || !ok2 || a == nil || b == nil {
		return nil, nil, fmt.Errorf("bias add: inputs %T and %T, want two tensors", vals[0], vals[1])
	}
	if a.Dtype() != b.Dtype() || a.Shape().Dims() != 2 || b.Shape().TotalSize() != a.Shape()[1] {
		return nil, nil, fmt.Errorf("bias add: inputs %v and %v, want rows×T and (T) of one dtype", a.Shape(), b.Shape())
	}
	return a, b, nil
}

func (op BiasAddOp) Do(vals ...G.Value) (G.Value, error) {
	a, _, err := biasInputs(vals)
	if err != nil {
		return nil, err
	}
	return op.UsePreallocDo(tensor.New(tensor.WithShape(a.Shape().Clone()...), tensor.Of(a.Dtype())), vals...)
}

// UnsafeDo adds b into a's own buffer.
func (op BiasAddOp) UnsafeDo(vals ...G.Value) (G.Value, error) {
	return op.UsePreallocDo(vals[0], vals...)
}

func (BiasAddOp) UsePreallocDo(prealloc G.Value, vals ...G.Value) (G.Value, error) {
	a, b, err := biasInputs(vals)
	if err != nil {
		return nil, err
	}
	out, ok := prealloc.(tensor.Tensor)
	if !ok || !out.Shape().Eq(a.Shape()) || out.Dtype() != a.Dtype() {
		return nil, fmt.Errorf("bias add: bad output buffer")
	}
	switch a.Dtype() {
	case tensor.Float32:
		addRows(dense.View[float32](out), dense.View[float32](a), dense.View[float32](b))
	case tensor.Float64:
		addRows(dense.View[float64](out), dense.View[float64](a), dense.View[float64](b))
	default:
		return nil, fmt.Errorf("bias add: unsupported dtype %v", a.Dtype())
	}
	return out, nil
}

func addRows[F dense.Float](out, a, b []F) {
	T := len(b)
	for i := 0; i+T <= len(a); i += T {
		o, r := out[i:i+T], a[i:i+T]
		for c, v := range b {
			o[c] = r[c] + v
		}
	}
}

func (BiasAddOp) DiffWRT(int) []bool { return []bool{true, true} }

// SymDiff: ∂(a + b)/∂a is the upstream gradient; ∂/∂b sums it over rows.
func (BiasAddOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	db, err := G.ApplyOp(ColSumOp{}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{grad, db}, nil
}

// ColSumOp sums a rows×T matrix over its rows into T values (the bias
// gradient Σ_i dz_i), into a preallocated output.
type ColSumOp struct{}

func (ColSumOp) Arity() int { return 1 }
func (ColSumOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a})
}
func (ColSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	T, err := in[0].DimSize(1)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{T}, nil
}
func (ColSumOp) ReturnsPtr() bool      { return false }
func (ColSumOp) CallsExtern() bool     { return false }
func (ColSumOp) OverwritesInput() int  { return -1 }
func (ColSumOp) String() string        { return "ColSum" }
func (ColSumOp) WriteHash(h hash.Hash) { fmt.Fprint(h, "ColSum") }
func (op ColSumOp) Hashcode() uint32   { return hashOf(op) }

func (op ColSumOp) Do(vals ...G.Value) (G.Value, error) {
	a, ok := vals[0].(tensor.Tensor)
	if !ok || a.Shape().Dims() != 2 {
		return nil, fmt.Errorf("column sum: input %v, want a matrix", vals[0].Shape())
	}
	return op.UsePreallocDo(tensor.New(tensor.WithShape(a.Shape()[1]), tensor.Of(a.Dtype())), vals...)
}

func (ColSumOp) UsePreallocDo(prealloc G.Value, vals ...G.Value) (G.Value, error) {
	a, ok := vals[0].(tensor.Tensor)
	out, ok2 := prealloc.(tensor.Tensor)
	if len(vals) != 1 || !ok || !ok2 || a.Shape().Dims() != 2 || out.Shape().TotalSize() != a.Shape()[1] || out.Dtype() != a.Dtype() {
		return nil, fmt.Errorf("column sum: bad input or output")
	}
	switch a.Dtype() {
	case tensor.Float32:
		colSum(dense.View[float32](out), dense.View[float32](a))
	case tensor.Float64:
		colSum(dense.View[float64](out), dense.View[float64](a))
	default:
		return nil, fmt.Errorf("column sum: unsupported dtype %v", a.Dtype())
	}
	return out, nil
}

// colSum adds the rows of a into out in row order (the order of a
// sequential Σ_i, as the reference does). Large matrices are split by
// columns over the worker pool, each chunk keeping that order, so the result
// does not depend on the split.
func colSum[F dense.Float](out, a []F) {
	T := len(out)
	rows := len(a) / max(T, 1)
	if rows*T < 1<<16 || T < 2 {
		colSumRange(out, a, 0, T)
		return
	}
	pool.Parallel(T, max(16, minWork/rows), &colSumTask[F]{out: out, a: a})
}

type colSumTask[F dense.Float] struct{ out, a []F }

func (k *colSumTask[F]) RunRange(lo, hi int) { colSumRange(k.out, k.a, lo, hi) }

// colSumRange sums columns [lo, hi) of a (rows×len(out)) into out.
func colSumRange[F dense.Float](out, a []F, lo, hi int) {
	T := len(out)
	o := out[lo:hi]
	for c := range o {
		o[c] = 0
	}
	for i := 0; i+T <= len(a); i += T {
		r := a[i+lo : i+hi]
		for c, v := range r {
			o[c] += v
		}
	}
}
