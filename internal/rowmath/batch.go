package rowmath

import (
	"fmt"
	"math"

	"dsx/internal/dense"
)

// Denominator is what Mean divides by: the summed weight of the labels of the
// non-ignored rows for hard targets (as nll_loss does), the number of rows for
// probability targets. It is 0 when every row is ignored or every kept row's
// label has class weight 0; Scale then returns 0 so that such a batch has
// loss 0 and zero gradients rather than 0/0.
func Denominator[F dense.Float](targets []F, rows int, o *Options) float64 {
	if o.SoftTargets {
		return float64(rows)
	}
	d := 0.0
	for i := 0; i < rows; i++ {
		y := int(targets[i])
		if o.Ignored(y) {
			continue
		}
		d += o.Weight(y)
	}
	return d
}

// KeptRows is what Mean divides the z-loss by (as Liger does): the number
// of rows not ignored, unweighted (every row for probability targets).
func KeptRows[F dense.Float](targets []F, rows int, o *Options) float64 {
	if o.SoftTargets || !o.UseIgnoreIndex {
		return float64(rows)
	}
	n := 0
	for i := 0; i < rows; i++ {
		if !o.Ignored(int(targets[i])) {
			n++
		}
	}
	return float64(n)
}

// Scale is the factor each row's loss and gradient is multiplied by under the
// reduction: 1/denominator for Mean (0 if the denominator is 0), else 1. The
// cross-entropy takes Scale(o, Denominator(…)), the z-loss Scale(o,
// KeptRows(…)); the two differ only under Mean with class weights.
func Scale(o *Options, denom float64) float64 {
	if o.Reduction != Mean {
		return 1
	}
	if denom == 0 {
		return 0
	}
	return 1 / denom
}

// CheckTargets validates targets for T classes: hard labels must be integers in
// [0, T) or the ignore index; probabilities must be finite.
func CheckTargets[F dense.Float](targets []F, rows, T int, o *Options) error {
	if o.SoftTargets {
		if len(targets) < rows*T {
			return fmt.Errorf("targets: %d values for %d rows of %d class probabilities", len(targets), rows, T)
		}
		for i, v := range targets[:rows*T] {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("targets: row %d, class %d: probability is %v", i/T, i%T, f)
			}
		}
		return nil
	}
	if len(targets) < rows {
		return fmt.Errorf("targets: %d labels for %d rows", len(targets), rows)
	}
	for i, v := range targets[:rows] {
		f := float64(v)
		y := int(f)
		if float64(y) != f {
			return fmt.Errorf("targets: row %d: label %v is not an integer", i, f)
		}
		if o.Ignored(y) {
			continue
		}
		if y < 0 || y >= T {
			return fmt.Errorf("targets: row %d: label %d out of range [0, %d)", i, y, T)
		}
	}
	return nil
}

// FirstNonFinite returns the first row of z (rows×T) whose loss in losses is
// not finite and the class and value of its first non-finite logit (col −1
// when they are all finite), or row −1 when every row's loss is finite (only
// their sum overflowed). graph.NonFiniteError reports it.
func FirstNonFinite[F dense.Float](z []F, losses []float64, T int) (row, col int, v float64) {
	for i, l := range losses {
		if l-l == 0 {
			continue
		}
		for c, x := range z[i*T : (i+1)*T] {
			if f := float64(x); f-f != 0 {
				return i, c, f
			}
		}
		return i, -1, 0
	}
	return -1, -1, 0
}
