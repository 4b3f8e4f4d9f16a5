package cpu

import (
	"math"

	"dsx/graph"
)

// Ref is the float64 result of Reference.
type Ref struct {
	Logits []float64 // B×T
	P      []float64 // B×T softmax
	Losses []float64 // B per-row losses before the reduction's scale
	Loss   float64   // reduced loss
	DZ     []float64 // B×T ∂Loss/∂logits
	DW     []float64 // N×T = xᵀ·dz
	DB     []float64 // T = Σ_rows dz
	DX     []float64 // B×N = dz·Wᵀ
}

// Reference computes the layer in float64 straight from the formulas, written
// independently of package graph for tests:
//
//	z = x·W + b; ẑ = c·tanh(z/c) with soft-capping c > 0, else ẑ = z;
//	p = softmax(ẑ) with the row maximum subtracted; lse_i = log Σ_c exp(ẑ_ic);
//	ce_i = (1−ε)·w_y·(−log p_y) + (ε/T)·Σ_c w_c·(−log p_c)   (class indices)
//	ce_i = −Σ_c w_c·((1−ε)·y_c + ε/T)·log p_c                 (probabilities)
//	zl_i = λ·lse_i² for every row not ignored (z-loss λ), else 0;
//	Loss = Σ_i ce_i/D + Σ_i zl_i/K under Mean, with D = Σ_{kept rows} w_y
//	       (indices) or B (probabilities) and K the number of kept rows (or B),
//	       a term being 0 when its denominator is; Σ_i (ce_i + zl_i) otherwise;
//	dz = ∂Loss/∂z: ∂Loss/∂ẑ_ic = (S_i·p_ic − a_ic)/D + 2λ·lse_i·p_ic/K (S_i =
//	     Σ_c a_ic, the coefficients of −log p_c) times ∂ẑ/∂z = 1 − (ẑ/c)²;
//	     for plain one-hot targets (p − y)/B;
//	dW = xᵀ·dz, db = Σ_i dz_i, dx = dz·Wᵀ.
//
// targets holds B labels or B×T probabilities. For Reduction None the
// gradients are those of Σ_i loss_i with Losses[i] = ce_i + zl_i. −log p_c is
// taken as (m − ẑ_c) + log Σ exp(ẑ − m), both terms ≥ 0, so the loss does not
// cancel at any scale of logits (TestReferenceHugeLogits).
func Reference(x, W, b, targets []float64, B, N, T int, o graph.LossOptions) Ref {
	r := Ref{Logits: make([]float64, B*T), P: make([]float64, B*T), Losses: make([]float64, B),
		DZ: make([]float64, B*T), DW: make([]float64, N*T), DB: make([]float64, T), DX: make([]float64, B*N)}
	wt := func(c int) float64 {
		if o.ClassWeights == nil {
			return 1
		}
		return o.ClassWeights[c]
	}
	eps, cp, lambda := o.LabelSmoothing, o.Softcap, o.ZLoss
	// a[i][c] is the coefficient of −log p_c in row i's loss; zc the capped
	// logits; lse and kept per row.
	a, zc := make([]float64, B*T), make([]float64, B*T)
	lse, kept := make([]float64, B), make([]bool, B)
	ce, zl := make([]float64, B), make([]float64, B)
	denom, nkept := 0.0, 0.0
	for i := 0; i < B; i++ {
		z := r.Logits[i*T : (i+1)*T]
		zi := zc[i*T : (i+1)*T]
		for c := 0; c < T; c++ {
			s := b[c]
			for k := 0; k < N; k++ {
				s += x[i*N+k] * W[k*T+c]
			}
			z[c] = s
			zi[c] = s
			if cp > 0 {
				zi[c] = cp * math.Tanh(s/cp)
			}
		}
		m := math.Inf(-1)
		for _, v := range zi {
			m = math.Max(m, v)
		}
		sum := 0.0
		for _, v := range zi {
			sum += math.Exp(v - m)
		}
		p := r.P[i*T : (i+1)*T]
		for c, v := range zi {
			p[c] = math.Exp(v-m) / sum
		}
		lse[i] = m + math.Log(sum)
		ai := a[i*T : (i+1)*T]
		if o.SoftTargets {
			for c := range ai {
				ai[c] = wt(c) * ((1-eps)*targets[i*T+c] + eps/float64(T))
			}
			denom++
		} else {
			y := int(targets[i])
			if o.UseIgnoreIndex && y == o.IgnoreIndex {
				continue
			}
			for c := range ai {
				ai[c] = eps / float64(T) * wt(c)
			}
			ai[y] += (1 - eps) * wt(y)
			denom += wt(y)
		}
		kept[i] = true
		nkept++
		for c := range ai {
			if ai[c] != 0 {
				ce[i] -= ai[c] * (zi[c] - m - math.Log(sum))
			}
		}
		zl[i] = lambda * lse[i] * lse[i]
		r.Losses[i] = ce[i] + zl[i]
	}
	inv := func(d float64) float64 {
		if o.Reduction != graph.Mean {
			return 1
		}
		if d == 0 {
			return 0
		}
		return 1 / d
	}
	sc, sz := inv(denom), inv(nkept)
	for i := 0; i < B; i++ {
		r.Loss += ce[i]*sc + zl[i]*sz
		S := 0.0
		for c := 0; c < T; c++ {
			S += a[i*T+c]
		}
		for c := 0; c < T; c++ {
			pc := r.P[i*T+c]
			g := sc * (S*pc - a[i*T+c])
			if kept[i] {
				g += sz * 2 * lambda * lse[i] * pc
			}
			if cp > 0 {
				u := zc[i*T+c] / cp
				g *= 1 - u*u
			}
			r.DZ[i*T+c] = g
		}
	}
	for i := 0; i < B; i++ {
		for c := 0; c < T; c++ {
			g := r.DZ[i*T+c]
			r.DB[c] += g
			for k := 0; k < N; k++ {
				r.DW[k*T+c] += x[i*N+k] * g
				r.DX[i*N+k] += g * W[k*T+c]
			}
		}
	}
	return r
}
