package graph

import (
	"fmt"
	"math"
)

// Float is the element type of a layer.
type Float interface{ float32 | float64 }

// Denominator is what Mean divides by: the summed weight of the labels of the
// non-ignored rows for hard targets (as nll_loss does), the number of rows for
// probability targets. It is 0 when every row is ignored; Scale then returns 0
// so that such a batch has loss 0 and zero gradients rather than 0/0.
func Denominator[F Float](targets []F, rows int, o *LossOptions) float64 {
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

// Scale is the factor each row's loss and gradient is multiplied by under the
// reduction: 1/denominator for Mean (0 if the denominator is 0), else 1.
func Scale(o *LossOptions, denom float64) float64 {
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
func CheckTargets[F Float](targets []F, rows, T int, o *LossOptions) error {
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

// RowLoss is the loss of one row z (T logits) against its target, before the
// reduction's scale: Σ_c a_c·(lse − z_c) with lse = log Σ exp(z) computed with
// the row maximum subtracted. It also returns lse for RowGrad. Ignored rows
// give 0.
func RowLoss[F Float](z []F, hardLabel int, soft []F, o *LossOptions) (loss, lse float64) {
	m := math.Inf(-1)
	for _, v := range z {
		if f := float64(v); f > m {
			m = f
		}
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	lse = m + math.Log(s)
	if math.IsInf(m, -1) { // every logit −Inf: no defined softmax
		lse = math.NaN()
	}
	return rowLossAt(z, lse, hardLabel, soft, o), lse
}

// rowLossAt is RowLoss for a row whose log-sum-exp is known.
func rowLossAt[F Float](z []F, lse float64, hardLabel int, soft []F, o *LossOptions) float64 {
	T := len(z)
	eps := o.LabelSmoothing
	if soft == nil {
		if o.Ignored(hardLabel) {
			return 0
		}
		wy := o.Weight(hardLabel)
		// Σ_c a_c with a_c = (1−ε)·wy·[c = y] + (ε/T)·w_c.
		S := (1-eps)*wy + eps/float64(T)*o.weightSum(T)
		az := (1 - eps) * wy * float64(z[hardLabel])
		if eps != 0 {
			wz := 0.0
			for c, v := range z {
				wz += o.Weight(c) * float64(v)
			}
			az += eps / float64(T) * wz
		}
		return S*lse - az
	}
	S, az := 0.0, 0.0
	for c, v := range z {
		a := o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
		S += a
		az += a * float64(v)
	}
	return S*lse - az
}

// RowGrad writes dz_c = scale·(S·p_c − a_c), the gradient of RowLoss·scale
// with respect to the row's logits, where p = softmax(z) = exp(z − lse) and
// S = Σ_c a_c. With one-hot targets and no options this is p − y.
func RowGrad[F Float](dz, z []F, lse float64, hardLabel int, soft []F, o *LossOptions, scale float64) {
	T := len(z)
	eps := o.LabelSmoothing
	if soft == nil {
		if o.Ignored(hardLabel) || scale == 0 {
			for c := range dz {
				dz[c] = 0
			}
			return
		}
		wy := o.Weight(hardLabel)
		S := (1-eps)*wy + eps/float64(T)*o.weightSum(T)
		k := eps / float64(T)
		for c, v := range z {
			p := math.Exp(float64(v) - lse)
			dz[c] = F(scale * (S*p - k*o.Weight(c)))
		}
		dz[hardLabel] -= F(scale * (1 - eps) * wy)
		return
	}
	S := 0.0
	for c := range z {
		S += o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
	}
	for c, v := range z {
		a := o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
		p := math.Exp(float64(v) - lse)
		dz[c] = F(scale * (S*p - a))
	}
}

// target returns row i's hard label or soft row.
func target[F Float](targets []F, i, T int, o *LossOptions) (int, []F) {
	if o.SoftTargets {
		return -1, targets[i*T : (i+1)*T]
	}
	return int(targets[i]), nil
}

// minWork is the number of logits below which splitting rows across
// goroutines costs more than it saves.
const minWork = 1 << 14

// rowGrain is the number of rows per chunk that holds at least minWork logits.
func rowGrain(T int) int {
	g := minWork / T
	if g < 1 {
		g = 1
	}
	return g
}
