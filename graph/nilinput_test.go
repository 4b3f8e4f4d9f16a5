package graph

import (
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestBadNodesAreErrors: the graph constructors return an error, never a
// panic (nor a panic formatted into an error), for a spec without a dtype,
// nil nodes, and nodes of two different graphs.
func TestBadNodesAreErrors(t *testing.T) {
	g, other := G.NewGraph(), G.NewGraph()
	z := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("z"))
	y := G.NewVector(g, tensor.Float64, G.WithShape(2), G.WithName("y"))
	b := G.NewVector(g, tensor.Float64, G.WithShape(3), G.WithName("b"))
	yOther := G.NewVector(other, tensor.Float64, G.WithShape(2), G.WithName("y"))
	bOther := G.NewVector(other, tensor.Float64, G.WithShape(3), G.WithName("b"))
	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"Build without dtype", func() error { _, err := Build(Spec{B: 2, N: 2, T: 2}); return err }, "layer dtype none"},
		{"Validate without dtype", func() error { return Spec{B: 2, N: 2, T: 2}.Validate() }, "layer dtype none"},
		{"SoftmaxCrossEntropy(nil, nil)", func() error { _, err := SoftmaxCrossEntropy(nil, nil, LossOptions{}); return err }, "the logits node is nil"},
		{"SoftmaxCrossEntropy(z, nil)", func() error { _, err := SoftmaxCrossEntropy(z, nil, LossOptions{}); return err }, "the targets node is nil"},
		{"SoftmaxCrossEntropy, two graphs", func() error { _, err := SoftmaxCrossEntropy(z, yOther, LossOptions{}); return err }, "different graphs"},
		{"BiasAdd(nil, nil)", func() error { _, err := BiasAdd(nil, nil); return err }, "nil"},
		{"BiasAdd(z, nil)", func() error { _, err := BiasAdd(z, nil); return err }, "nil"},
		{"BiasAdd, two graphs", func() error { _, err := BiasAdd(z, bOther); return err }, "different graphs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panic: %v", p)
					}
				}()
				err = c.call()
			}()
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "PANIC") {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	// The good calls still work.
	if _, err := SoftmaxCrossEntropy(z, y, LossOptions{}); err != nil {
		t.Error(err)
	}
	if _, err := BiasAdd(z, b); err != nil {
		t.Error(err)
	}
}
