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
		return fmt.Errorf("layer dtype %v: want float32 or float64", s.DType)
	}
	return s.Loss.Validate(s.T)
}

// MaxElements bounds every matrix of a layer (B×N, N×T, B×T), so that its
// size in bytes, at 8 bytes an element, fits an int.
const MaxElements = math.MaxInt / 8

// Layer is the built graph and its named nodes.
type Layer struct {
	Spec Spec
	G    *G.ExprGraph

	X       *G.Node // B×N input
	W       *G.Node // N×T weights
	Bias    *G.Node // T bias
	Targets *G.Node // B class indices (as floats) or B×T probabilities

	XW     *G.Node // B×N·N×T product
	Logits *G.Node // B×T = x·W + b
	Xent   *G.Node // the SoftmaxXent node: scalar, or B losses for Reduction None
	Loss   *G.Node // scalar cost: Xent, or Σ Xent for Reduction None

	DW, DB, DX *G.Node // gradients of Loss (nil unless wanted)
}

// Build makes the graph for spec. Inputs X and Targets are bound per batch
// with G.Let, W and Bias once by the backend: no node holds a value, so
// building allocates nothing of the layer's size (W alone may be
// gigabytes).
func Build(spec Spec) (*Layer, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	g := G.NewGraph()
	dt := spec.DType
	l := &Layer{Spec: spec, G: g}
	l.X = G.NewMatrix(g, dt, G.WithShape(spec.B, spec.N), G.WithName("x"))
	l.W = G.NewMatrix(g, dt, G.WithShape(spec.N, spec.T), G.WithName("W"))
	l.Bias = G.NewVector(g, dt, G.WithShape(spec.T), G.WithName("b"))
	if spec.Loss.SoftTargets {
		l.Targets = G.NewMatrix(g, dt, G.WithShape(spec.B, spec.T), G.WithName("targets"))
	} else {
		l.Targets = G.NewVector(g, dt, G.WithShape(spec.B), G.WithName("targets"))
	}
	var err error
	if l.XW, err = G.Mul(l.X, l.W); err != nil {
		return nil, fmt.Errorf("x·W: %w", err)
	}
	if l.Logits, err = BiasAdd(l.XW, l.Bias); err != nil {
		return nil, fmt.Errorf("x·W + b: %w", err)
	}
	if l.Xent, err = SoftmaxCrossEntropy(l.Logits, l.Targets, spec.Loss); err != nil {
		return nil, err
	}
	l.Loss = l.Xent
	if spec.Loss.Reduction == None {
		if l.Loss, err = G.Sum(l.Xent); err != nil {
			return nil, fmt.Errorf("Σ losses: %w", err)
		}
	}
	var wrt G.Nodes
	var into []**G.Node
	for _, p := range []struct {
		on bool
		n  *G.Node
		d  **G.Node
	}{{spec.Want.W, l.W, &l.DW}, {spec.Want.B, l.Bias, &l.DB}, {spec.Want.X, l.X, &l.DX}} {
		if p.on {
			wrt = append(wrt, p.n)
			into = append(into, p.d)
		}
	}
	if len(wrt) > 0 {
		grads, err := G.Grad(l.Loss, wrt...)
		if err != nil {
			return nil, fmt.Errorf("gradients: %w", err)
		}
		for i, d := range into {
			*d = grads[i]
		}
	}
	return l, nil
}

// Outputs are the nodes a training step computes: the loss (and per-row
// losses) and the wanted gradients.
func (l *Layer) Outputs() G.Nodes {
	out := G.Nodes{l.Loss}
	if l.Xent != l.Loss {
		out = append(out, l.Xent)
	}
	for _, d := range []*G.Node{l.DW, l.DB, l.DX} {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// TrainGraph is the subgraph that reaches Outputs and nothing else: Gorgonia's
// symbolic differentiation of x·W builds both dW and dx, and compiling the whole
// graph would compute the unwanted one too.
func (l *Layer) TrainGraph() *G.ExprGraph { return l.G.SubgraphRoots(l.Outputs()...) }

// ForwardGraph is the subgraph that computes Logits only (evaluation and
// prediction).
func (l *Layer) ForwardGraph() *G.ExprGraph { return l.G.SubgraphRoots(l.Logits) }
