package graph

import (
	"fmt"
	"math"
	"testing"

	"dsx/internal/rowmath"
	"dsx/internal/tol"
)

// TestHugeLogits: RowLoss, RowGrad and the fused kernel give a row offset by
// 1e12, 1e15 or 3e60 the loss and gradient of the row shifted to zero (the
// offset + d_c are exact in float64, so the shifted row is the exact
// answer), under every option. The bound is a few ulp of the loss: the
// terms of Σ a_c·(m − z_c) + S·L are all ≥ 0 (tol.ShiftedLoss,
// tol.ShiftedGrad).
func TestHugeLogits(t *testing.T) {
	d := []float64{0, 0.5, 1.25, 2, -3}
	T := len(d)
	w := []float64{0.5, 1, 2, 0.25, 1.5}
	soft := []float64{0.1, 0.2, 0.3, 0.15, 0.25}
	for _, o := range []LossOptions{{}, {LabelSmoothing: 0.1}, {ClassWeights: w, LabelSmoothing: 0.3}, {SoftTargets: true}, {SoftTargets: true, ClassWeights: w}} {
		for _, off := range []float64{1e12, 1e15, -1e15, 3e60, 1e300} {
			vals := d
			if math.Abs(off) > 1e16 {
				vals = make([]float64, T) // equal logits: d would round away
			}
			z := make([]float64, T)
			for c, v := range vals {
				z[c] = off + v
			}
			for y := 0; y < T; y++ {
				t.Run(fmt.Sprintf("%+v/offset=%g/y=%d", o, off, y), func(t *testing.T) {
					var tg []float64
					if o.SoftTargets {
						tg = soft
					}
					want, lw := rowmath.RowLoss(vals, y, tg, o.row())
					got, lz := rowmath.RowLoss(z, y, tg, o.row())
					if tol.Close([]float64{got}, []float64{want}, tol.ShiftedLoss) != nil {
						t.Errorf("RowLoss = %.17g, want %.17g", got, want)
					}
					gw, gz := make([]float64, T), make([]float64, T)
					rowmath.RowGrad(gw, vals, lw, y, tg, o.row(), 1)
					rowmath.RowGrad(gz, z, lz, y, tg, o.row(), 1)
					for c := range gw {
						if tol.Close(gz[c:c+1], gw[c:c+1], tol.ShiftedGrad) != nil {
							t.Errorf("RowGrad[%d] = %.17g, want %.17g", c, gz[c], gw[c])
						}
					}
					// The fused kernel on the same row.
					op := &XentOp{Opts: o, T: T, hasGrad: true}
					k := op.cpu64()
					tgt := []float64{float64(y)}
					if o.SoftTargets {
						tgt = soft
					}
					if sum, _ := k.forward(z, tgt, 1, 1, 1); tol.Close([]float64{sum}, []float64{want}, tol.ShiftedLoss) != nil {
						t.Errorf("fused loss = %.17g, want %.17g", sum, want)
					}
					dz := make([]float64, T)
					k.backward(dz, z, tgt, 1, 1, 1, nil)
					for c := range gw {
						if tol.Close(dz[c:c+1], gw[c:c+1], tol.ShiftedGrad) != nil {
							t.Errorf("fused grad[%d] = %.17g, want %.17g", c, dz[c], gw[c])
						}
					}
				})
			}
		}
	}
}
