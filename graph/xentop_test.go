package graph

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"dsx/internal/tol"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestUseBatchDenominators: under Mean, a chunk's loss is divided by the
// batch's denominators while they are set and by its own rows' after the
// returned function runs; the op prints under its type's name.
func TestUseBatchDenominators(t *testing.T) {
	g := G.NewGraph()
	z := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("z"))
	y := G.NewVector(g, tensor.Float64, G.WithShape(2), G.WithName("y"))
	loss, err := SoftmaxCrossEntropy(z, y, LossOptions{Reduction: Mean, ZLoss: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	op, ok := AsXent(loss)
	if !ok || !strings.HasPrefix(op.String(), "XentOp{") {
		t.Fatalf("AsXent: %v, %q", ok, op)
	}
	zv := []float64{1, 2, 3, 0, 0, 0}
	lse0, lse1 := math.Log(math.Exp(1)+math.Exp(2)+math.Exp(3)), math.Log(3)
	ce := (lse0 - 3) + (lse1 - 0) // targets 2 and 0
	zl := 0.5 * (lse0*lse0 + lse1*lse1)
	run := func() float64 {
		t.Helper()
		v, err := op.Do(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(append([]float64(nil), zv...))),
			tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{2, 0})))
		if err != nil {
			t.Fatal(err)
		}
		return v.Data().(float64)
	}
	for _, c := range []struct {
		name string
		set  func() func()
		want float64
	}{
		{"own rows", func() func() { return func() {} }, ce/2 + zl/2},
		{"batch of 8 (6 weight)", func() func() { return op.UseBatchDenominators(6, 8) }, ce/6 + zl/8},
		{"restored", func() func() { return func() {} }, ce/2 + zl/2},
	} {
		restore := c.set()
		if err := tol.Close([]float64{run()}, []float64{c.want}, tol.F64); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		restore()
	}
}

// TestXentOpFields: the op's exported fields are its options and class
// count; the batch denominators a chunked backend sets are set through
// UseBatchDenominators, not fields.
func TestXentOpFields(t *testing.T) {
	var names []string
	rt := reflect.TypeOf(XentOp{})
	for i := range rt.NumField() {
		if rt.Field(i).IsExported() {
			names = append(names, rt.Field(i).Name)
		}
	}
	if strings.Join(names, ",") != "Opts,T" {
		t.Errorf("XentOp exports %v", names)
	}
}
