package graph

import (
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestCompiledProgram checks what the VM runs: only the wanted gradients'
// products (dx costs a B×N×T product of its own) and no broadcast copy of
// the bias.
func TestCompiledProgram(t *testing.T) {
	for _, c := range []struct {
		want     Want
		products int
	}{
		{Want{}, 1},                             // x·W
		{Want{DW: true, DB: true}, 2},           // x·W, xᵀ·dz
		{Want{DB: true}, 1},                     // x·W only: db needs no product
		{Want{DW: true, DB: true, DX: true}, 3}, // and dz·Wᵀ
	} {
		l, err := Build(Spec{B: 4, N: 3, T: 5, DType: tensor.Float32, Want: c.want})
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(l.TrainGraph())
		prog := m.Prog().String()
		m.Close()
		// The instruction listing is printed twice (program, then node map).
		n := strings.Count(prog, "×") / 2
		if n != c.products {
			t.Errorf("want %v: %d matrix products compiled, want %d:\n%s", c.want, n, c.products, prog)
		}
		if strings.Contains(prog, "Repeat") {
			t.Errorf("want %v: the bias is repeated into a B×T copy:\n%s", c.want, prog)
		}
	}
}
