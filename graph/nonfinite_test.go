package graph

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"dsx/internal/dense"
)

// TestNonFiniteRows: the fused forward pass reports the first row whose
// logits hold NaN or +Inf, at any position in the row (the exp loop runs two
// elements at a time with a tail, and a vectorised replacement may run
// more), ignored rows included, and names the class. A −Inf logit is an
// error where the target weighs its class (the loss is +Inf), with
// soft-capping (which would hide it), or when the whole row is −Inf;
// elsewhere it is the softmax's p = 0, and the row's loss and gradient stay
// finite.
func TestNonFiniteRows(t *testing.T) {
	const B, T = 6, 7
	tg := []float64{0, 1, 2, 3, 4, 5} // row 3 is ignored
	tg32 := []float32{0, 1, 2, 3, 4, 5}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, col := range []int{0, 1, 5, 6} {
			for _, row := range []int{0, 3, 5} {
				for _, cp := range []float64{0, 5} {
					name := fmt.Sprintf("%v at [%d, %d], softcap %v", v, row, col, cp)
					z := make([]float64, B*T)
					for i := range z {
						z[i] = float64(i%5) - 2
					}
					z[row*T+col] = v
					z32 := dense.Convert[float32](z)
					o := LossOptions{UseIgnoreIndex: true, IgnoreIndex: 3, Softcap: cp}
					wantErr := v != math.Inf(-1) || cp > 0 || (col == int(tg[row]) && row != 3)
					for _, grad := range []bool{true, false} {
						op := &XentOp{Opts: o, T: T, hasGrad: grad}
						loss64, err64 := op.cpu64().forward(z, tg, B, 1, 1)
						loss32, err32 := op.cpu32().forward(z32, tg32, B, 1, 1)
						for _, err := range []error{err64, err32} {
							var nf *NonFiniteError
							if !wantErr {
								if err != nil {
									t.Errorf("%s: %v, want p = 0 for that class and no error", name, err)
								}
								continue
							}
							if !errors.As(err, &nf) || !errors.Is(err, ErrNonFinite) {
								t.Fatalf("%s (grad %v): error %v, want a NonFiniteError", name, grad, err)
							}
							if nf.Row != row || nf.Col != col || !(nf.Value == v || v != v && nf.Value != nf.Value) {
								t.Errorf("%s (grad %v): error names row %d, class %d, value %v", name, grad, nf.Row, nf.Col, nf.Value)
							}
						}
						if !wantErr && grad {
							dz := make([]float64, B*T)
							op.cpu64().backward(dz, z, tg, B, 1, 1, nil)
							for i, g := range dz {
								if g-g != 0 || (i == row*T+col && g != 0) {
									t.Fatalf("%s: dz[%d] = %v (loss %v, %v)", name, i, g, loss64, loss32)
								}
							}
						}
					}
				}
			}
		}
	}
	// A row of −Inf alone has no softmax.
	z := []float64{0, 1, 2, math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	op := &XentOp{T: 3}
	_, err := op.cpu64().forward(z, []float64{0, 1}, 2, 1, 1)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Row != 1 || nf.Col != 0 {
		t.Errorf("row of −Inf: %v", err)
	}
}

// TestExpSub32NaN: the float32 exp loop (assembly and Go, rows of 1 to 33
// elements) turns a NaN logit into a NaN sum; the non-finite check relies
// on it.
func TestExpSub32NaN(t *testing.T) {
	for n := 1; n <= 33; n++ {
		for at := 0; at < n; at++ {
			z := make([]float32, n)
			z[at] = float32(math.NaN())
			e := make([]float32, n)
			if s := expSub32(z, 0, e); s == s {
				t.Fatalf("n = %d, NaN at %d: Σ exp = %v, want NaN", n, at, s)
			}
		}
	}
}
