package graph

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

// TestNonFiniteRows: the fused forward pass reports the first row whose
// logits hold NaN, +Inf or −Inf, at any position in the row (the exp loop
// runs two elements at a time with a tail, and a vectorised replacement
// may run more), ignored rows included, and names the class.
func TestNonFiniteRows(t *testing.T) {
	const B, T = 6, 7
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, col := range []int{0, 1, 5, 6} {
			for _, row := range []int{0, 3, 5} {
				name := fmt.Sprintf("%v at [%d, %d]", v, row, col)
				z := make([]float64, B*T)
				for i := range z {
					z[i] = float64(i%5) - 2
				}
				z[row*T+col] = v
				tg := []float64{0, 1, 2, 3, 4, 5}
				o := LossOptions{UseIgnoreIndex: true, IgnoreIndex: 3}
				tg[3] = 3 // row 3 is ignored
				z32 := make([]float32, len(z))
				for i, x := range z {
					z32[i] = float32(x)
				}
				tg32 := []float32{0, 1, 2, 3, 4, 5}
				for _, grad := range []bool{true, false} {
					// Soft-capping maps ±Inf to ±c: the check looks at the raw
					// logits.
					o := o
					o.Softcap = map[bool]float64{true: 0, false: 5}[grad]
					op := &XentOp{Opts: o, T: T, hasGrad: grad}
					_, err64 := op.cpu64().forward(z, tg, B, 1, 1)
					_, err32 := op.cpu32().forward(z32, tg32, B, 1, 1)
					for _, err := range []error{err64, err32} {
						var nf *NonFiniteError
						if !errors.As(err, &nf) || !errors.Is(err, ErrNonFinite) {
							t.Fatalf("%s (grad %v, softcap %v): error %v, want a NonFiniteError", name, grad, o.Softcap, err)
						}
						if nf.Row != row || nf.Col != col || !(nf.Value == v || v != v && nf.Value != nf.Value) {
							t.Errorf("%s (grad %v): error names row %d, class %d, value %v", name, grad, nf.Row, nf.Col, nf.Value)
						}
					}
				}
			}
		}
	}
}

// TestExpSub32NaN: the float32 exp loop (or the replacement a build
// installs) turns a NaN logit into a NaN sum; the non-finite check relies
// on it.
func TestExpSub32NaN(t *testing.T) {
	for n := 1; n <= 33; n++ {
		for at := 0; at < n; at++ {
			z := make([]float32, n)
			z[at] = float32(math.NaN())
			e := make([]float32, n)
			if s := ExpSub32(z, 0, e); s == s {
				t.Fatalf("n = %d, NaN at %d: Σ exp = %v, want NaN", n, at, s)
			}
		}
	}
}
