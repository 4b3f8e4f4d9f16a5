// Package tol holds every tolerance the project's tests compare floats with,
// each with the reason for its size, and the one comparison (Close) that
// applies them: the conformance suite, the CUDA backend's tests (on a GPU
// and on its emulator) and the graph's own tests use it. Tolerances are
// never loosened to make a test pass; a new one comes here with its
// reason.
package tol

import (
	"fmt"
	"math"
	"testing"

	"gorgonia.org/tensor"
)

// Tol is an error bound |got − want| ≤ Abs + Rel·max|want| applied to every
// element; the Rel term scales with the largest value in the compared vector
// so that entries near zero are not held to a relative bound they cannot
// meet. With PerElement the bound is Abs + Rel·|want_i|, element by element
// (a relative error of each value). NaN and Inf never pass (but for an
// expected ±Inf).
type Tol struct {
	Abs, Rel   float64
	PerElement bool
	Why        string
}

var (
	// F64: float64 arithmetic against the float64 reference. The two sum in
	// different orders (dot products of length N or B, the log-sum-exp over
	// T ≤ 8003 terms), each rounding by 2⁻⁵³ ≈ 1.1e-16 per operation; 1e-10
	// relative leaves a factor of 10⁴ over N·u for N ≤ 8003.
	F64 = Tol{Abs: 1e-12, Rel: 1e-10, Why: "float64 sums in another order"}
	// F32: float32 arithmetic (inputs rounded to float32 first, so only the
	// arithmetic differs) against the float64 reference. float32 rounds by
	// 2⁻²⁴ ≈ 6e-8 per operation; dot products of length ≤ 1024 and the
	// softmax's exp/log give relative errors of a few 1e-6 with sequential
	// sums; 5e-5 covers blocked and parallel sums on GPUs without being loose
	// enough to hide a wrong term (those are O(1/B) or larger here).
	F32 = Tol{Abs: 1e-6, Rel: 5e-5, Why: "float32 rounding (2⁻²⁴) over dot products of length ≤ 1024"}
	// FD: analytic float64 gradients against central differences
	// (f(θ+h) − f(θ−h))/2h with h = 1e-5: truncation error h²·f'''/6 ≈ 1e-10
	// and rounding error u·|f|/h ≈ 1e-11 for |f| ≈ 1, so 1e-6 leaves margin
	// yet catches any missing factor.
	FD = Tol{Abs: 1e-7, Rel: 1e-6, Why: "central differences with h = 1e-5 in float64"}
	// Quoted4: worked examples quoted to 4 decimals (0.0900, 0.2447,
	// 0.6652; 0.0171, 0.0466, 0.9362): the quotation itself is off by up to 5e-5.
	Quoted4 = Tol{Abs: 5e-5, Why: "values quoted to 4 decimals"}
	// Saturated: softmax([1000,2000,3000]) = [0,0,1]: the true values are
	// e^-1000 and e^-2000, far below any float's resolution next to 1; only
	// rounding of the largest entry remains (≤ 2⁻²⁴ in float32).
	Saturated = Tol{Abs: 1e-7, Why: "saturated softmax: e^-1000 underflows, only rounding of 1 remains"}
	// Exact: values copied, not computed (parameters set and read back):
	// any difference is a misread.
	Exact = Tol{Why: "values copied, not computed"}
)

// Tolerances between two devices and for the reduced-precision matrix
// modes, used by the CUDA backend's parity tests.
var (
	// ParityF32: CPU against GPU, both float32: each side is within
	// F32's relative bound of the exact value, so they are within twice
	// that of each other.
	ParityF32 = Tol{Abs: 1e-6, Rel: 1e-4, Why: "float32 products summed in different orders on two devices (2 × F32)"}
	// ParityF64: float64 on both devices; the reordering errors are far
	// below F64's bound, which serves for the pair.
	ParityF64 = Tol{Abs: 1e-12, Rel: 1e-10, Why: "float64 sums in different orders on two devices"}
	// TF32: products on TF32 tensor cores round both operands to a 10-bit
	// mantissa (unit roundoff 2⁻¹¹ ≈ 4.9e-4). The logits move by a few u
	// times Σ|x_k·W_kc|, the softmax passes that on to p − y, and dW and dx
	// go through a second rounded product: ≈ 40u relative to the largest
	// value, 2e-2.
	TF32 = Tol{Abs: 1e-5, Rel: 2e-2, Why: "TF32 operands (10-bit mantissa, u = 2⁻¹¹)"}
)

// For returns the arithmetic tolerance of a dtype against the float64
// reference: F32 or F64.
func For(dt tensor.Dtype) Tol {
	if dt == tensor.Float32 {
		return F32
	}
	return F64
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
	worst, at, atBound := 0.0, -1, bound
	for i := range got {
		g, w := got[i], want[i]
		if math.IsNaN(g) || math.IsInf(g, 0) {
			if g == w { // an expected ±Inf (never NaN)
				continue
			}
			return fmt.Errorf("element %d is %v, want %v", i, g, w)
		}
		b := bound
		if tol.PerElement {
			b = tol.Abs + tol.Rel*math.Abs(w)
		}
		if d := math.Abs(g - w); d > b && d-b > worst-atBound {
			worst, at, atBound = d, i, b
		}
	}
	if at >= 0 {
		return fmt.Errorf("element %d: got %.10g, want %.10g (|diff| %.3g > bound %.3g: %s)", at, got[at], want[at], worst, atBound, tol.Why)
	}
	return nil
}

// Expect fails the test when got and want differ beyond tol.
func Expect(t testing.TB, what string, got, want []float64, tol Tol) {
	t.Helper()
	if err := Close(got, want, tol); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// BF16 bounds a bf16-mode gradient product against float32 when x and W
// are exactly representable in bfloat16 (so the forward product is exact):
// the one extra error is dz rounded to bfloat16 (nearest, unit roundoff
// u = 2⁻⁸) before dW = xᵀ·dz (dW true) or dx = dz·Wᵀ (dW false), so
// |error| ≤ u·Σ|x_ik|·|dz_ic| (or u·Σ_c |dz_ic|·|W_kc|), taken at its
// largest element, plus the float32 parity bound. dz is rows×T, x rows×N
// and W N×T.
func BF16(dz, xw []float64, rows, T, N int, dW bool) Tol {
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
	return Tol{Abs: ParityF32.Abs + u*worst, Rel: ParityF32.Rel, Why: "dz rounded to bfloat16 (u = 2⁻⁸) in the product, bound u·Σ|a||b|"}
}

// Tolerances of a CUDA kernel against rowmath.RowLoss / rowmath.RowGrad on the
// same inputs (backend/cuda's kernel tests): the kernel computes in float64
// and rounds its outputs once to the dtype.
var (
	// KernelF64: float64 arithmetic summed in another order (the row
	// split over threads and warps): a few ulps (2⁻⁵³) per term over T ≤ 50257
	// terms stays far below 1e-12 of the row's largest value.
	KernelF64 = Tol{Abs: 1e-300, Rel: 1e-12, Why: "float64 sums in another order, in the kernel"}
	// KernelF32: float64 arithmetic, then one rounding to float32 (half an
	// ulp, 2⁻²⁴ ≈ 6e-8 relative) of values ≤ max|ref|: 2e-7 is that rounding
	// with margin for the float64 part.
	KernelF32 = Tol{Abs: 1e-300, Rel: 2e-7, Why: "one rounding to float32 (2⁻²⁴) after float64 arithmetic"}
)

// Tolerances of package graph's own tests: its fused op against the row
// arithmetic (package rowmath) on the same logits, the float32 exp, and
// rows offset by huge values.
var (
	// FusedF64: the fused op sums each row's terms in another order than
	// rowmath (Σ exp over T = 11 terms, the smoothing sums), in float64:
	// a few ulps (2⁻⁵³ ≈ 1.1e-16) per term; 1e-12 of 1 + |value| leaves a
	// factor of 10³ over T·u.
	FusedF64 = Tol{Abs: 1e-12, Rel: 1e-12, PerElement: true, Why: "float64 row sums in another order (fused op against rowmath)"}
	// FusedF32: the float32 op against the float64 row arithmetic on the
	// float32-rounded logits: exp32's 2 ulp (2.4e-7) per term and the
	// rounding of the output (2⁻²⁴), over rows of T = 11 and a batch sum of
	// B = 37 rows: 2e-5 of 1 + |value|.
	FusedF32 = Tol{Abs: 2e-5, Rel: 2e-5, PerElement: true, Why: "float32 exp (2 ulp) and outputs rounded to float32, against float64"}
	// Exp32: the float32 exp (Cephes' expf: a degree-6 polynomial after a
	// reduction by ln 2) is within 2 ulp of the true value for normal
	// results: 2·2⁻²³ ≈ 2.4e-7 relative, value by value; so is a float64
	// sum of such terms.
	Exp32 = Tol{Rel: 2.4e-7, PerElement: true, Why: "2 ulp of float32 (2·2⁻²³) per exp"}
	// ShiftedLoss: a row offset by 1e12 … 1e300 (offset + d_c exact in
	// float64) has the loss of the row shifted to zero to a few ulp: every
	// term of Σ a_c·(m − z_c) + S·L is ≥ 0, so nothing cancels; 4e-16 is
	// 2 ulp (2·2⁻⁵³) of the loss.
	ShiftedLoss = Tol{Rel: 4e-16, PerElement: true, Why: "2 ulp of a sum of non-negative terms"}
	// ShiftedGrad: the gradient of such a row, p_c − y_c with p_c ≤ 1
	// computed as exp((ẑ_c − m) − L): a few ulp of 1, 1e-15 absolute.
	ShiftedGrad = Tol{Abs: 1e-15, Why: "a few ulp of values ≤ 1"}
)

// Tolerances of data-parallel training (package dist): a layer stepping as
// one of P ranks on its share of a global batch against the one-process
// layer on the whole batch.
var (
	// DataParallelF32: a step's loss, dW and db. Both sides compute the
	// same float32 products and sums in another order: each rank sums its
	// rows, the all-reduce adds the P partial sums, where the one process
	// sums all rows in its own blocking. Each side is within F32 of the
	// exact value, so the two are within twice that: ParityF32's bound.
	// The Mean denominators are all-reduced in float64 (integer counts,
	// exact; or sums of class weights, off by a few 2⁻⁵³) and change
	// nothing at this size.
	DataParallelF32 = Tol{Abs: ParityF32.Abs, Rel: ParityF32.Rel, Why: "float32 sums of the same terms split over ranks, then added by the all-reduce (2 × F32)"}
	// DataParallelF64: the same in float64 (ParityF64's bound).
	DataParallelF64 = Tol{Abs: ParityF64.Abs, Rel: ParityF64.Rel, Why: "float64 sums of the same terms split over ranks, then added by the all-reduce"}
)

// DataParallel is DataParallelF32 or DataParallelF64 for a dtype.
func DataParallel(dt tensor.Dtype) Tol {
	if dt == tensor.Float32 {
		return DataParallelF32
	}
	return DataParallelF64
}

// DataParallelParams bounds the parameters after steps optimizer steps of
// a P-rank layer against the one-process layer's, from the same
// parameters on the same global batches. Each step's gradients differ by
// at most d = Abs + Rel·gmax (DataParallel, gmax the largest gradient
// magnitude); an update passes a gradient difference on times amp (SGD:
// lr, and lr·Σβʲ ≤ lr·min(steps, 1/(1−β)) with momentum β; Adam: 2·lr/ε,
// since m̂/(√v̂+ε) moves by at most 1/ε per unit of m̂ and as much again
// through v̂); a parameter difference grows a step by at most growth =
// 1 + lr·L, L bounding how far the gradient moves with the parameters
// (the softmax's Jacobian is at most ½, times ‖x‖²_F over the
// denominator, times the largest class weight); and each update rounds
// the parameter to the dtype on each side (2u of max|W|, the Rel term).
func DataParallelParams(dt tensor.Dtype, steps int, gmax, amp, growth float64) Tol {
	s := DataParallel(dt)
	u := 0x1p-53
	if dt == tensor.Float32 {
		u = 0x1p-24
	}
	d := s.Abs + s.Rel*gmax
	bound := 0.0
	for range steps {
		bound = bound*growth + amp*d
	}
	return Tol{Abs: bound, Rel: 2 * float64(steps) * u,
		Why: fmt.Sprintf("%d steps: gradients that differ by ≤ %.3g, amplified ×%.3g by the update and ×%.3g a step by the parameters", steps, d, amp, growth)}
}
