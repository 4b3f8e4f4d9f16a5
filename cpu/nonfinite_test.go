package cpu

import (
	"errors"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestDivergedParameters: a learning rate that overflows W to ±Inf makes the
// next step an error that blames the parameters (not x), names the row and
// leaves W as it was.
func TestDivergedParameters(t *testing.T) {
	const B, N, T = 4, 3, 5
	l, err := Backend{}.Open(backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
		Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 1e38}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	x := tensor.New(tensor.WithShape(B, N), tensor.WithBacking([]float32{10, -20, 30, -10, 20, 10, 30, 20, -10, 5, 5, 5}))
	y := tensor.New(tensor.WithShape(B), tensor.WithBacking([]float32{0, 1, 2, 3}))
	for step := 1; step <= 5; step++ {
		W, _, _ := l.Params()
		_, err = l.Step(x, y)
		if err == nil {
			continue
		}
		var nf *graph.NonFiniteError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), "the parameters are not finite (W[") || strings.Contains(err.Error(), "x[") {
			t.Fatalf("step %d: %v, want a NonFiniteError blaming W", step, err)
		}
		after, _, _ := l.Params()
		for i, v := range W.Data().([]float32) {
			if a := after.Data().([]float32)[i]; a != v && (a == a || v == v) {
				t.Fatalf("step %d failed but W[%d] changed from %v to %v", step, i, v, a)
			}
		}
		t.Logf("step %d: %v", step, err)
		return
	}
	t.Fatal("five steps at lr 1e38 and no error")
}
