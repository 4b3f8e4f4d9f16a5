package lower

import (
	"fmt"
	"strconv"
	"strings"

	"dsx/graph"

	G "gorgonia.org/gorgonia"
)

// nodeKind is what a node of the layer graph is, as far as lowering cares.
type nodeKind int

const (
	nUnknown  nodeKind = iota // anything else: lowering fails with ErrNotImplemented
	nInput                    // an input (x, W, b, targets): no op
	nConst                    // a constant scalar
	nReshape                  // Reshape
	nSizeOf                   // SizeOf a value's axis (size: the size it has)
	nRepeat                   // Repeat along axis (axis)
	nMatMul                   // matrix × matrix (tA, tB)
	nSum                      // Σ along axis (axis)
	nXent                     // graph.XentOp
	nXentGrad                 // graph.XentGradOp
	nBiasAdd                  // graph.BiasAddOp
	nColSum                   // graph.ColSumOp
)

var nodeKindNames = map[nodeKind]string{
	nUnknown: "unknown", nInput: "input", nConst: "constant", nReshape: "reshape", nSizeOf: "size-of",
	nRepeat: "repeat", nMatMul: "matmul", nSum: "sum", nXent: "softmax-cross-entropy",
	nXentGrad: "softmax-cross-entropy gradient", nBiasAdd: "bias add", nColSum: "column sum",
}

func (k nodeKind) String() string {
	if s, ok := nodeKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("nodeKind(%d)", int(k))
}

// recognized is a node's kind and the parameters lowering needs.
type recognized struct {
	kind   nodeKind
	tA, tB bool    // nMatMul: transposed operands
	size   int     // nSizeOf: the size
	axis   int     // nRepeat, nSum: the axis
	c      float64 // nConst: its value
	xent   *graph.XentOp
	grad   *graph.XentGradOp
	op     string // the op's Go type, for errors
}

// recognize is the one place that knows Gorgonia's internals: it maps a
// node to its kind by its op's Go type and, for Gorgonia's unexported ops,
// by their String(). TestRecognizeEveryNode lowers every graph the layer
// builds and fails when any node is not recognised, so a Gorgonia upgrade
// that renames an op fails `make test`, not a later GPU run.
func recognize(n *G.Node) recognized {
	op := n.Op()
	r := recognized{op: fmt.Sprintf("%T", op)}
	if op == nil {
		r.kind = nInput
		return r
	}
	switch o := op.(type) {
	case *graph.XentOp:
		r.kind, r.xent = nXent, o
		return r
	case *graph.XentGradOp:
		r.kind, r.grad = nXentGrad, o
		return r
	case graph.BiasAddOp:
		r.kind = nBiasAdd
		return r
	case graph.ColSumOp:
		r.kind = nColSum
		return r
	}
	s := op.String()
	switch r.op {
	case "gorgonia.constantScalar":
		switch v := n.Value().(type) {
		case *G.F64:
			r.kind, r.c = nConst, float64(*v)
		case *G.F32:
			r.kind, r.c = nConst, float64(*v)
		}
	case "gorgonia.reshapeOp":
		r.kind = nReshape
	case "gorgonia.sizeOp":
		if v, err := strconv.Atoi(strings.TrimPrefix(s, "SizeOf=")); err == nil && strings.HasPrefix(s, "SizeOf=") {
			r.kind, r.size = nSizeOf, v
		}
	case "*gorgonia.repeatOp", "gorgonia.repeatOp":
		if v, err := strconv.Atoi(strings.TrimPrefix(s, "Repeat")); err == nil {
			r.kind, r.axis = nRepeat, v
		}
	case "gorgonia.sumOp":
		if s == "Σ[0]" {
			r.kind, r.axis = nSum, 0
		}
	case "gorgonia.linAlgBinOp":
		switch s {
		case "A × B":
			r.kind = nMatMul
		case "Aᵀ × B":
			r.kind, r.tA = nMatMul, true
		case "A × Bᵀ":
			r.kind, r.tB = nMatMul, true
		case "Aᵀ × Bᵀ":
			r.kind, r.tA, r.tB = nMatMul, true, true
		}
	}
	return r
}
