//go:build openblas

package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"dsx/graph"
)

// TestExpSub32C: the vectorised C loop the openblas build installs computes
// the same terms as the Go loop (the same polynomial and operations, so
// equal to the bit) and a sum that differs only by the order of float64
// additions (8 partial sums against 2): relative 1e-15, far below the
// float32 terms' own rounding.
func TestExpSub32C(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for _, n := range []int{1, 7, 8, 9, 1000, 8003} {
		z := make([]float32, n)
		for i := range z {
			z[i] = float32(r.NormFloat64() * 30)
		}
		z[0] = float32(math.Inf(-1)) // exp(−Inf) = 0
		m := float32(40)
		ec, eg := make([]float32, n), make([]float32, n)
		sc, sg := graph.ExpSub32(z, m, ec), graph.ExpSub32Go(z, m, eg)
		for i := range eg {
			if ec[i] != eg[i] {
				t.Fatalf("n=%d: term %d: C %v, Go %v", n, i, ec[i], eg[i])
			}
		}
		if math.Abs(sc-sg) > 1e-15*math.Abs(sg) {
			t.Errorf("n=%d: sum C %v, Go %v", n, sc, sg)
		}
	}
	z := []float32{1, float32(math.NaN()), 2}
	if s := graph.ExpSub32(z, 2, make([]float32, 3)); !math.IsNaN(s) {
		t.Errorf("NaN in the row: sum %v, want NaN", s)
	}
}
