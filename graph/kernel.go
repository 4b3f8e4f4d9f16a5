package graph

import (
	"fmt"
	"math"
)

// Float is the element type of a layer.
type Float interface{ float32 | float64 }

// Denominator is what Mean divides by: the summed weight of the labels of the
// non-ignored rows for hard targets (as nll_loss does), the number of rows for
// probability targets. It is 0 when every row is ignored or every kept row's
// label has class weight 0; Scale then returns 0 so that such a batch has
// loss 0 and zero gradients rather than 0/0.
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
// reduction's scale, and the row's log-sum-exp lse = log Σ exp(z) for
// RowGrad. Ignored rows give loss 0.
//
// The loss is Σ_c a_c·(lse − z_c), computed as
//
//	Σ_c a_c·(m − z_c) + S·log Σ_c exp(z_c − m)      m = max_c z_c, S = Σ_c a_c
//
// where every term is ≥ 0 (a_c ≥ 0, z_c ≤ m, the sum ≥ 1), so nothing
// cancels: the loss is exact to a few ulp at any scale of logits. The form
// S·lse − Σ_c a_c·z_c subtracts two numbers of the logits' magnitude and
// loses every digit they share (at 1e15 the loss was 1.4e-2 off; T equal
// logits of 3e60 gave 0 instead of log T).
func RowLoss[F Float](z []F, hardLabel int, soft []F, o *LossOptions) (loss, lse float64) {
	m, L := rowStats(z)
	return rowLossAt(z, m, L, hardLabel, soft, o), m + L
}

// rowStats returns the row maximum m and L = log Σ exp(z − m), in float64;
// L is NaN when every logit is −Inf (no defined softmax).
func rowStats[F Float](z []F) (m, L float64) {
	m = math.Inf(-1)
	for _, v := range z {
		if f := float64(v); f > m {
			m = f
		}
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	L = math.Log(s)
	if math.IsInf(m, -1) {
		L = math.NaN()
	}
	return m, L
}

// rowLossAt is RowLoss for a row whose maximum m and L = log Σ exp(z − m)
// are known: Σ_c a_c·(m − z_c) + S·L.
func rowLossAt[F Float](z []F, m, L float64, hardLabel int, soft []F, o *LossOptions) float64 {
	T := len(z)
	eps := o.LabelSmoothing
	if soft == nil {
		if o.Ignored(hardLabel) {
			return 0
		}
		wy := o.Weight(hardLabel)
		// a_c = (1−ε)·wy·[c = y] + (ε/T)·w_c; S = Σ_c a_c.
		S := (1-eps)*wy + eps/float64(T)*o.weightSum(T)
		loss := (1 - eps) * wy * (m - float64(z[hardLabel]))
		if eps != 0 {
			wd := 0.0
			for c, v := range z {
				wd += o.Weight(c) * (m - float64(v))
			}
			loss += eps / float64(T) * wd
		}
		return loss + S*L
	}
	S, ad := 0.0, 0.0
	for c, v := range z {
		a := o.Weight(c) * ((1-eps)*float64(soft[c]) + eps/float64(T))
		S += a
		ad += a * (m - float64(v))
	}
	return ad + S*L
}

// RowGrad writes dz_c = scale·(S·p_c − a_c), the gradient of RowLoss·scale
// with respect to the row's logits, where p = softmax(z) and S = Σ_c a_c.
// With one-hot targets and no options this is p − y. It takes p_c as
// exp((z_c − m) − log Σ exp(z − m)) from the row itself rather than
// exp(z_c − lse), which would keep only the digits of z_c − lse that the
// logits' magnitude leaves; lse is accepted for the callers that have it.
func RowGrad[F Float](dz, z []F, lse float64, hardLabel int, soft []F, o *LossOptions, scale float64) {
	T := len(z)
	eps := o.LabelSmoothing
	if soft == nil && (o.Ignored(hardLabel) || scale == 0) {
		for c := range dz {
			dz[c] = 0
		}
		return
	}
	m, L := rowStats(z)
	p := func(v F) float64 { return math.Exp((float64(v) - m) - L) }
	if soft == nil {
		wy := o.Weight(hardLabel)
		S := (1-eps)*wy + eps/float64(T)*o.weightSum(T)
		k := eps / float64(T)
		for c, v := range z {
			dz[c] = F(scale * (S*p(v) - k*o.Weight(c)))
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
		dz[c] = F(scale * (S*p(v) - a))
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
