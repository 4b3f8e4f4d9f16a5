package conformance

import (
	"fmt"
	"math"
	"testing"

	"gorgonia.org/tensor"
)

// Tol is an error bound |got − want| ≤ Abs + Rel·max|want| applied to every
// element; the Rel term scales with the largest value in the compared vector
// so that entries near zero are not held to a relative bound they cannot
// meet. NaN and Inf never pass.
type Tol struct {
	Abs, Rel float64
	Why      string
}

var (
	// tolF64: float64 arithmetic against the float64 reference. The two sum in
	// different orders (dot products of length N or B, the log-sum-exp over
	// T ≤ 8003 terms), each rounding by 2⁻⁵³ ≈ 1.1e-16 per operation; 1e-10
	// relative leaves a factor of 10⁴ over N·u for N ≤ 8003.
	tolF64 = Tol{Abs: 1e-12, Rel: 1e-10, Why: "float64 sums in another order"}
	// tolF32: float32 arithmetic (inputs rounded to float32 first, so only the
	// arithmetic differs) against the float64 reference. float32 rounds by
	// 2⁻²⁴ ≈ 6e-8 per operation; dot products of length ≤ 1024 and the
	// softmax's exp/log give relative errors of a few 1e-6 with sequential
	// sums; 5e-5 covers blocked and parallel sums on GPUs without being loose
	// enough to hide a wrong term (those are O(1/B) or larger here).
	tolF32 = Tol{Abs: 1e-6, Rel: 5e-5, Why: "float32 rounding (2⁻²⁴) over dot products of length ≤ 1024"}
	// tolFD: analytic float64 gradients against central differences
	// (f(θ+h) − f(θ−h))/2h with h = 1e-5: truncation error h²·f'''/6 ≈ 1e-10
	// and rounding error u·|f|/h ≈ 1e-11 for |f| ≈ 1, so 1e-6 leaves margin
	// yet catches any missing factor.
	tolFD = Tol{Abs: 1e-7, Rel: 1e-6, Why: "central differences with h = 1e-5 in float64"}
	// tolQuoted4: worked examples quoted to 4 decimals (0.0900, 0.2447,
	// 0.6652; 0.0171, 0.0466, 0.9362): the quotation itself is off by up to 5e-5.
	tolQuoted4 = Tol{Abs: 5e-5, Why: "values quoted to 4 decimals"}
	// tolSaturated: softmax([1000,2000,3000]) = [0,0,1]: the true values are
	// e^-1000 and e^-2000, far below any float's resolution next to 1; only
	// rounding of the largest entry remains (≤ 2⁻²⁴ in float32).
	tolSaturated = Tol{Abs: 1e-7, Why: "saturated softmax: e^-1000 underflows, only rounding of 1 remains"}
)

// Tolerances between two devices and for the reduced-precision matrix
// modes, used by the CUDA backend's parity tests; exported so that every
// tolerance lives in this file.
var (
	// TolParityF32: CPU against GPU, both float32: each side is within
	// tolF32's relative bound of the exact value, so they are within twice
	// that of each other.
	TolParityF32 = Tol{Abs: 1e-6, Rel: 1e-4, Why: "float32 products summed in different orders on two devices (2 × tolF32)"}
	// TolParityF64: float64 on both devices; the reordering errors are far
	// below tolF64's bound, which serves for the pair.
	TolParityF64 = Tol{Abs: 1e-12, Rel: 1e-10, Why: "float64 sums in different orders on two devices"}
	// TolTF32: products on TF32 tensor cores round both operands to a 10-bit
	// mantissa (unit roundoff 2⁻¹¹ ≈ 4.9e-4). The logits move by a few u
	// times Σ|x_k·W_kc|, the softmax passes that on to p − y, and dW and dx
	// go through a second rounded product: ≈ 40u relative to the largest
	// value, 2e-2.
	TolTF32 = Tol{Abs: 1e-5, Rel: 2e-2, Why: "TF32 operands (10-bit mantissa, u = 2⁻¹¹)"}
)

// tolFor returns the arithmetic tolerance of a dtype.
func tolFor(dt tensor.Dtype) Tol {
	if dt == tensor.Float32 {
		return tolF32
	}
	return tolF64
}

// Close reports whether got matches want within tol, and where it does not.
func Close(got, want []float64, tol Tol) error {
	if len(got) != len(want) {
		return fmt.Errorf("length %d, want %d", len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		if a := math.Abs(w); a > scale && !math.IsInf(a, 0) {
			scale = a
		}
	}
	bound := tol.Abs + tol.Rel*scale
	worst, at := 0.0, -1
	for i := range got {
		g, w := got[i], want[i]
		if math.IsNaN(g) || math.IsInf(g, 0) {
			if g == w { // an expected ±Inf (never NaN)
				continue
			}
			return fmt.Errorf("element %d is %v, want %v", i, g, w)
		}
		if d := math.Abs(g - w); d > bound && d > worst {
			worst, at = d, i
		}
	}
	if at >= 0 {
		return fmt.Errorf("element %d: got %.10g, want %.10g (|diff| %.3g > bound %.3g: %s)", at, got[at], want[at], worst, bound, tol.Why)
	}
	return nil
}

// expectClose fails the test when got and want differ beyond tol.
func expectClose(t *testing.T, what string, got, want []float64, tol Tol) {
	t.Helper()
	if err := Close(got, want, tol); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// TolBF16 bounds a bf16-mode gradient product against float32 when x and W
// are exactly representable in bfloat16 (so the forward product is exact):
// the one extra error is dz rounded to bfloat16 (nearest, unit roundoff
// u = 2⁻⁸) before dW = xᵀ·dz (dW true) or dx = dz·Wᵀ (dW false), so
// |error| ≤ u·Σ|x_ik|·|dz_ic| (or u·Σ_c |dz_ic|·|W_kc|), taken at its
// largest element, plus the float32 parity bound. dz is rows×T, x rows×N
// and W N×T.
func TolBF16(dz, xw []float64, rows, T, N int, dW bool) Tol {
	const u = 1.0 / 256
	worst := 0.0
	if dW {
		for k := 0; k < N; k++ {
			for c := 0; c < T; c++ {
				s := 0.0
				for i := 0; i < rows; i++ {
					s += math.Abs(xw[i*N+k] * dz[i*T+c])
				}
				worst = math.Max(worst, s)
			}
		}
	} else {
		for i := 0; i < rows; i++ {
			for k := 0; k < N; k++ {
				s := 0.0
				for c := 0; c < T; c++ {
					s += math.Abs(dz[i*T+c] * xw[k*T+c])
				}
				worst = math.Max(worst, s)
			}
		}
	}
	return Tol{Abs: TolParityF32.Abs + u*worst, Rel: TolParityF32.Rel, Why: "dz rounded to bfloat16 (u = 2⁻⁸) in the product, bound u·Σ|a||b|"}
}

// Tolerances of a CUDA kernel against rowmath.RowLoss / rowmath.RowGrad on the
// same inputs (backend/cuda's kernel tests): the kernel computes in float64
// and rounds its outputs once to the dtype.
var (
	// TolKernelF64: float64 arithmetic summed in another order (the row
	// split over threads and warps): a few ulps (2⁻⁵³) per term over T ≤ 50257
	// terms stays far below 1e-12 of the row's largest value.
	TolKernelF64 = Tol{Abs: 1e-300, Rel: 1e-12, Why: "float64 sums in another order, in the kernel"}
	// TolKernelF32: float64 arithmetic, then one rounding to float32 (half an
	// ulp, 2⁻²⁴ ≈ 6e-8 relative) of values ≤ max|ref|: 2e-7 is that rounding
	// with margin for the float64 part.
	TolKernelF32 = Tol{Abs: 1e-300, Rel: 2e-7, Why: "one rounding to float32 (2⁻²⁴) after float64 arithmetic"}
)
