package rowmath

import (
	"math"

	"dsx/internal/dense"
)

// RowLoss is the loss of one row z (T logits) against its target, before the
// reduction's scales: the cross-entropy plus the z-loss (RowTerms), as
// Reduction None reports it; and the row's log-sum-exp lse = log Σ exp(ẑ) of
// the soft-capped logits ẑ (ẑ = z without soft-capping). Ignored rows give
// loss 0.
func RowLoss[F dense.Float](z []F, hardLabel int, soft []F, o *Options) (loss, lse float64) {
	ce, zl, lse := RowTerms(z, hardLabel, soft, o)
	return ce + zl, lse
}

// RowTerms returns a row's cross-entropy ce, its z-loss zl and lse, before
// the reduction's scales. With ẑ_c = c·tanh(z_c/c) (Softcap c > 0; else
// ẑ = z), m = max_c ẑ_c, L = log Σ_c exp(ẑ_c − m) and lse = m + L:
//
//	ce = Σ_c a_c·(m − ẑ_c) + S·L       a_c the target's coefficients, S = Σ_c a_c
//	zl = λ·lse²                        (ZLoss λ; 0 for an ignored row)
//
// ce is Σ_c a_c·(lse − ẑ_c) written so that every term is ≥ 0 (a_c ≥ 0,
// ẑ_c ≤ m, L ≥ 0) and nothing cancels: it is exact to a few ulp at any scale
// of logits. The form S·lse − Σ_c a_c·ẑ_c subtracts two numbers of the
// logits' magnitude and loses every digit they share (at 1e15 the loss was
// 1.4e-2 off; T equal logits of 3e60 gave 0 instead of log T).
func RowTerms[F dense.Float](z []F, hardLabel int, soft []F, o *Options) (ce, zl, lse float64) {
	m, L := rowStats(z, o.Softcap)
	ce, zl = RowTermsAt(z, m, L, hardLabel, soft, o)
	return ce, zl, m + L
}

// Capped is the soft-capped logit c·tanh(v/c), or v when c is 0.
func Capped(v, c float64) float64 {
	if c > 0 {
		return c * math.Tanh(v/c)
	}
	return v
}

// rowStats returns the maximum m of the capped logits and L = log Σ
// exp(ẑ − m), in float64; L is NaN when every logit is −Inf (no defined
// softmax).
func rowStats[F dense.Float](z []F, c float64) (m, L float64) {
	m = math.Inf(-1)
	for _, v := range z {
		if f := Capped(float64(v), c); f > m {
			m = f
		}
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(Capped(float64(v), c) - m)
	}
	L = math.Log(s)
	if math.IsInf(m, -1) {
		L = math.NaN()
	}
	return m, L
}

// RowTermsAt is RowTerms for a row whose maximum m and L = log Σ exp(ẑ − m)
// are known.
func RowTermsAt[F dense.Float](z []F, m, L float64, hardLabel int, soft []F, o *Options) (ce, zl float64) {
	T := len(z)
	eps, c := o.LabelSmoothing, o.Softcap
	if o.ZLoss > 0 && (soft != nil || !o.Ignored(hardLabel)) {
		lse := m + L
		zl = o.ZLoss * lse * lse
	}
	if soft == nil {
		if o.Ignored(hardLabel) {
			return 0, 0
		}
		wy := o.Weight(hardLabel)
		// a_c = (1−ε)·wy·[c = y] + (ε/T)·w_c; S = Σ_c a_c.
		S := (1-eps)*wy + eps/float64(T)*o.WeightSum(T)
		ce = (1 - eps) * wy * (m - Capped(float64(z[hardLabel]), c))
		if eps != 0 {
			wd := 0.0
			for k, v := range z {
				if w := o.Weight(k); w != 0 { // 0·(m − (−Inf)) is NaN: a class of weight 0 counts for nothing
					wd += w * (m - Capped(float64(v), c))
				}
			}
			ce += eps / float64(T) * wd
		}
		return ce + S*L, zl
	}
	S, ad := 0.0, 0.0
	for k, v := range z {
		a := o.Weight(k) * ((1-eps)*float64(soft[k]) + eps/float64(T))
		S += a
		if a != 0 { // a −Inf logit the target does not weigh has p = 0 and costs nothing (0·Inf is NaN)
			ad += a * (m - Capped(float64(v), c))
		}
	}
	return ad + S*L, zl
}

// RowGrad writes the gradient of scale·RowLoss with respect to the row's
// logits: RowGradScaled with the cross-entropy and the z-loss scaled alike
// (right whenever Denominator and KeptRows agree: no class weights, or
// Reduction Sum or None). lse is accepted for the callers that have it; the
// row's statistics are taken from z itself (see RowGradScaled).
func RowGrad[F dense.Float](dz, z []F, lse float64, hardLabel int, soft []F, o *Options, scale float64) {
	RowGradScaled(dz, z, hardLabel, soft, o, scale, scale)
}

// RowGradScaled writes dz_c = ∂(sc·ce + sz·zl)/∂z_c for the row's terms of
// RowTerms:
//
//	g_c  = sc·(S·p_c − a_c) + sz·2λ·lse·p_c       p = softmax(ẑ), ∂/∂ẑ_c
//	dz_c = g_c·(1 − tanh²(z_c/c))                  with soft-capping c > 0, else g_c
//
// With one-hot targets and no options this is sc·(p − y). p_c is taken as
// exp((ẑ_c − m) − L) from the row itself rather than exp(ẑ_c − lse), which
// would keep only the digits of ẑ_c − lse that the logits' magnitude leaves.
func RowGradScaled[F dense.Float](dz, z []F, hardLabel int, soft []F, o *Options, sc, sz float64) {
	T := len(z)
	eps, c := o.LabelSmoothing, o.Softcap
	if soft == nil && o.Ignored(hardLabel) {
		clear(dz)
		return
	}
	m, L := rowStats(z, c)
	zf := sz * 2 * o.ZLoss * (m + L) // the z-loss's coefficient of p_c
	a := func(k int) float64 {
		if soft != nil {
			return o.Weight(k) * ((1-eps)*float64(soft[k]) + eps/float64(T))
		}
		v := eps / float64(T) * o.Weight(k)
		if k == hardLabel {
			v += (1 - eps) * o.Weight(k)
		}
		return v
	}
	S := 0.0
	for k := range z {
		S += a(k)
	}
	for k, v := range z {
		zc := Capped(float64(v), c)
		p := math.Exp((zc - m) - L)
		g := sc*(S*p-a(k)) + zf*p
		if c > 0 {
			t := math.Tanh(float64(v) / c)
			g *= 1 - t*t
		}
		dz[k] = F(g)
	}
}

// Target returns row i's hard label or soft row.
func Target[F dense.Float](targets []F, i, T int, o *Options) (int, []F) {
	if o.SoftTargets {
		return -1, targets[i*T : (i+1)*T]
	}
	return int(targets[i]), nil
}

// Argmax is the first index of the largest value, as numpy's argmax.
func Argmax[F dense.Float](v []F) int {
	best := 0
	for c, x := range v {
		if x > v[best] {
			best = c
		}
	}
	return best
}
