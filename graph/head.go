package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Spec fixes a layer's shape, element type, loss and wanted gradients.
type Spec struct {
	B, N, T int
	DType   tensor.Dtype // tensor.Float32 or tensor.Float64
	Loss    LossOptions
	Want    Want
}

// Validate checks the spec.
func (s Spec) Validate() error {
	if s.B < 1 || s.N < 1 || s.T < 1 {
		return fmt.Errorf("layer shape B×N×T = %d×%d×%d: every size must be ≥ 1", s.B, s.N, s.T)
	}
	// Every buffer's element count, and its size in bytes, must fit an int:
	// a product that wraps around would size a buffer far smaller than the
	// shape (N = 2⁶²+1, T = 4 once made a 4-element W).
	for _, p := range []struct {
		name string
		a, b int
	}{{"B×N", s.B, s.N}, {"N×T", s.N, s.T}, {"B×T", s.B, s.T}} {
		if p.a > MaxElements/p.b {
			return fmt.Errorf("layer shape B×N×T = %d×%d×%d: %s overflows (more than %d elements)", s.B, s.N, s.T, p.name, MaxElements)
		}
	}
	if s.DType != tensor.Float32 && s.DType != tensor.Float64 {
		return fmt.Errorf("layer dtype %s: want float32 or float64", dtypeName(s.DType))
	}
	return s.Loss.Validate(s.T)
}

// dtypeName names a dtype; the zero Dtype (none given), whose String
// method dereferences a nil pointer, is "none".
func dtypeName(dt tensor.Dtype) string {
	if dt.Type == nil {
		return "none"
	}
	return dt.String()
}

// checkNodes reports nil nodes and nodes of different graphs as an error
// of op, which Gorgonia would meet with a nil-pointer panic.
func checkNodes(op string, names []string, nodes ...*G.Node) error {
	for i, n := range nodes {
		if n == nil {
			return fmt.Errorf("%s: the %s node is nil", op, names[i])
		}
	}
	for _, n := range nodes[1:] {
		if n.Graph() != nodes[0].Graph() {
			return fmt.Errorf("%s: %s belong to different graphs", op, joinAnd(names))
		}
	}
	return nil
}

func joinAnd(names []string) string {
	if len(names) == 2 {
		return names[0] + " and " + names[1]
	}
	return fmt.Sprint(names)
}

// MaxElements bounds every matrix of a layer (B×N, N×T, B×T), so that its
// size in bytes, at 8 bytes an element, fits an int.
const MaxElements = math.MaxInt / 8

// Head is the classifier head built as a Gorgonia graph, and its named
// nodes. (It is the graph only; a backend.Layer is that graph opened on a
// device with its parameters and buffers.)
type Head struct {
	Spec Spec
	G    *G.ExprGraph

	X       *G.Node // B×N input
	W       *G.Node // N×T weights
	Bias    *G.Node // T bias
	Targets *G.Node // B class indices (as floats) or B×T probabilities

	XW     *G.Node // B×N·N×T product
	Logits *G.Node // B×T = x·W + b
	Xent   *G.Node // the XentOp node: scalar, or B losses for Reduction None
	Loss   *G.Node // scalar cost: Xent, or Σ Xent for Reduction None

	DW, DB, DX *G.Node // gradients of Loss (nil unless wanted)
}

// Build makes the graph for spec. Inputs X and Targets are bound per batch
// with G.Let, W and Bias once by the backend: no node holds a value, so
// building allocates nothing of the layer's size (W alone may be
// gigabytes).
func Build(spec Spec) (*Head, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	g := G.NewGraph()
	dt := spec.DType
	h := &Head{Spec: spec, G: g}
	h.X = G.NewMatrix(g, dt, G.WithShape(spec.B, spec.N), G.WithName("x"))
	h.W = G.NewMatrix(g, dt, G.WithShape(spec.N, spec.T), G.WithName("W"))
	h.Bias = G.NewVector(g, dt, G.WithShape(spec.T), G.WithName("b"))
	if spec.Loss.SoftTargets {
		h.Targets = G.NewMatrix(g, dt, G.WithShape(spec.B, spec.T), G.WithName("targets"))
	} else {
		h.Targets = G.NewVector(g, dt, G.WithShape(spec.B), G.WithName("targets"))
	}
	var err error
	if h.XW, err = G.Mul(h.X, h.W); err != nil {
		return nil, fmt.Errorf("x·W: %w", err)
	}
	if h.Logits, err = BiasAdd(h.XW, h.Bias); err != nil {
		return nil, fmt.Errorf("x·W + b: %w", err)
	}
	if h.Xent, err = SoftmaxCrossEntropy(h.Logits, h.Targets, spec.Loss); err != nil {
		return nil, err
	}
	h.Loss = h.Xent
	if spec.Loss.Reduction == None {
		if h.Loss, err = G.Sum(h.Xent); err != nil {
			return nil, fmt.Errorf("Σ losses: %w", err)
		}
	}
	var wrt G.Nodes
	var into []**G.Node
	for _, p := range []struct {
		on bool
		n  *G.Node
		d  **G.Node
	}{{spec.Want.DW, h.W, &h.DW}, {spec.Want.DB, h.Bias, &h.DB}, {spec.Want.DX, h.X, &h.DX}} {
		if p.on {
			wrt = append(wrt, p.n)
			into = append(into, p.d)
		}
	}
	if len(wrt) > 0 {
		grads, err := G.Grad(h.Loss, wrt...)
		if err != nil {
			return nil, fmt.Errorf("gradients: %w", err)
		}
		for i, d := range into {
			*d = grads[i]
		}
	}
	return h, nil
}

// Outputs are the nodes a training step computes: the loss (and per-row
// losses) and the wanted gradients.
func (h *Head) Outputs() G.Nodes {
	out := G.Nodes{h.Loss}
	if h.Xent != h.Loss {
		out = append(out, h.Xent)
	}
	for _, d := range []*G.Node{h.DW, h.DB, h.DX} {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// TrainGraph is the subgraph that reaches Outputs and nothing else: Gorgonia's
// symbolic differentiation of x·W builds both dW and dx, and compiling the whole
// graph would compute the unwanted one too.
func (h *Head) TrainGraph() *G.ExprGraph { return h.G.SubgraphRoots(h.Outputs()...) }

// ForwardGraph is the subgraph that computes Logits only (evaluation and
// prediction).
func (h *Head) ForwardGraph() *G.ExprGraph { return h.G.SubgraphRoots(h.Logits) }
