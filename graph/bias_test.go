package graph

import (
	"math/rand/v2"
	"testing"
)

// TestColSumSplit: the column sum split over the worker pool adds each
// column in row order, as the sequential sum does, so the two are equal to
// the bit (no tolerance: the same additions in the same order).
func TestColSumSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sz := range []struct{ rows, T int }{{300, 1000}, {4096, 17}, {70, 8003}} {
		a := make([]float32, sz.rows*sz.T)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		got, want := make([]float32, sz.T), make([]float32, sz.T)
		colSum(got, a)
		colSumRange(want, a, 0, sz.T)
		for c := range want {
			if got[c] != want[c] {
				t.Fatalf("%d×%d: column %d: split sum %v, sequential %v", sz.rows, sz.T, c, got[c], want[c])
			}
		}
	}
}
