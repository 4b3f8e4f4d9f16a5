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
//	z = x·W + b; p = softmax(z) with the row maximum subtracted;
//	loss_i = (1−ε)·w_y·(−log p_y) + (ε/T)·Σ_c w_c·(−log p_c)   (class indices)
//	loss_i = −Σ_c w_c·((1−ε)·y_c + ε/T)·log p_c                 (probabilities)
//	Mean divides by Σ_{kept rows} w_y (indices) or B (probabilities), 0 if that is 0;
//	dz = ∂Loss/∂z, which for plain one-hot targets is (p − y)/B;
//	dW = xᵀ·dz, db = Σ_i dz_i, dx = dz·Wᵀ.
//
// targets holds B labels or B×T probabilities. For Reduction None the
// gradients are those of Σ_i loss_i. −log p_c is taken as
// (m − z_c) + log Σ exp(z − m), both terms ≥ 0, so the loss does not cancel
// at any scale of logits (TestReferenceHugeLogits).
func Reference(x, W, b, targets []float64, B, N, T int, o graph.LossOptions) Ref {
	r := Ref{Logits: make([]float64, B*T), P: make([]float64, B*T), Losses: make([]float64, B),
		DZ: make([]float64, B*T), DW: make([]float64, N*T), DB: make([]float64, T), DX: make([]float64, B*N)}
	wt := func(c int) float64 {
		if o.ClassWeights == nil {
			return 1
		}
		return o.ClassWeights[c]
	}
	eps := o.LabelSmoothing
	// a[i][c] is the coefficient of −log p_c in row i's loss.
	a := make([]float64, B*T)
	denom := 0.0
	for i := 0; i < B; i++ {
		z := r.Logits[i*T : (i+1)*T]
		for c := 0; c < T; c++ {
			s := b[c]
			for k := 0; k < N; k++ {
				s += x[i*N+k] * W[k*T+c]
			}
			z[c] = s
		}
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, v)
		}
		sum := 0.0
		for _, v := range z {
			sum += math.Exp(v - m)
		}
		p := r.P[i*T : (i+1)*T]
		for c, v := range z {
			p[c] = math.Exp(v-m) / sum
		}
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
		for c := range ai {
			if ai[c] != 0 {
				r.Losses[i] -= ai[c] * (z[c] - m - math.Log(sum))
			}
		}
	}
	scale := 1.0
	if o.Reduction == graph.Mean {
		scale = 0
		if denom != 0 {
			scale = 1 / denom
		}
	}
	for i := 0; i < B; i++ {
		r.Loss += r.Losses[i] * scale
		S := 0.0
		for c := 0; c < T; c++ {
			S += a[i*T+c]
		}
		for c := 0; c < T; c++ {
			r.DZ[i*T+c] = scale * (S*r.P[i*T+c] - a[i*T+c])
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
