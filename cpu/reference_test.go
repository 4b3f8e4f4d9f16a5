package cpu

import (
	"math"
	"testing"

	"dsx/graph"
	"dsx/internal/tol"
)

// TestReferenceHugeLogits: the reference is exact at any scale of logits
// (its loss is Σ_c a_c·((m − z_c) + log Σ exp(z − m)), terms ≥ 0): rows
// offset by up to 1e300 give the loss and gradient of the same rows shifted
// to zero, to a few ulp. With x the identity the logits are W exactly.
func TestReferenceHugeLogits(t *testing.T) {
	d := []float64{0, 0.5, 1.25, 2, -3}
	const B, T = 5, 5
	x := make([]float64, B*B)
	for i := 0; i < B; i++ {
		x[i*B+i] = 1
	}
	offsets := []float64{1e12, 1e15, -1e15, 3e60, 1e300}
	var W, shifted []float64
	for _, off := range offsets {
		for _, v := range d {
			if math.Abs(off) > 1e16 {
				v = 0 // equal logits
			}
			W = append(W, off+v)
			shifted = append(shifted, v)
		}
	}
	targets := []float64{0, 1, 2, 3, 4}
	for _, o := range []graph.LossOptions{{Reduction: graph.None}, {Reduction: graph.None, LabelSmoothing: 0.2}} {
		got := Reference(x, W, make([]float64, T), targets, B, B, T, o)
		want := Reference(x, shifted, make([]float64, T), targets, B, B, T, o)
		for i := range want.Losses {
			if tol.Close(got.Losses[i:i+1], want.Losses[i:i+1], tol.ShiftedLoss) != nil {
				t.Errorf("ε=%g row %d (offset %g): loss %.17g, want %.17g", o.LabelSmoothing, i, offsets[i], got.Losses[i], want.Losses[i])
			}
		}
		for i := range want.DZ {
			if tol.Close(got.DZ[i:i+1], want.DZ[i:i+1], tol.ShiftedGrad) != nil {
				t.Errorf("ε=%g dz[%d] = %.17g, want %.17g", o.LabelSmoothing, i, got.DZ[i], want.DZ[i])
			}
		}
	}
}
