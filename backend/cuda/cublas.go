//go:build gpu

package cuda

// The cuBLAS calls this backend makes, through a small cgo shim over its own
// handle: gorgonia.org/cu's wrapper has neither cublasSetMathMode (TF32) nor
// cublasGemmEx (bfloat16 operands), and does not expose its handle.

/*
#cgo LDFLAGS: -lcublas
#include <stdint.h>
#include <cublas_v2.h>

static cublasHandle_t dsx_handle;

static int dsx_blas_init(void) { return (int)cublasCreate(&dsx_handle); }

// mode: 0 fp32/fp64 (CUBLAS_DEFAULT_MATH, no tensor cores for float32),
// 1 TF32 tensor cores.
static int dsx_math_mode(int mode) {
	return (int)cublasSetMathMode(dsx_handle, mode == 1 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
}

static cublasOperation_t op(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

static int dsx_sgemm(int ta, int tb, int m, int n, int k, float alpha, uintptr_t a, int lda,
                     uintptr_t b, int ldb, float beta, uintptr_t c, int ldc) {
	return (int)cublasSgemm(dsx_handle, op(ta), op(tb), m, n, k, &alpha, (const float *)a, lda,
	                        (const float *)b, ldb, &beta, (float *)c, ldc);
}

static int dsx_dgemm(int ta, int tb, int m, int n, int k, double alpha, uintptr_t a, int lda,
                     uintptr_t b, int ldb, double beta, uintptr_t c, int ldc) {
	return (int)cublasDgemm(dsx_handle, op(ta), op(tb), m, n, k, &alpha, (const double *)a, lda,
	                        (const double *)b, ldb, &beta, (double *)c, ldc);
}

// bfloat16 A and B, float32 accumulation, C in float32 (c16 = 0) or
// bfloat16 (c16 = 1: dx under bfloat16 storage).
static int dsx_gemm_bf16(int ta, int tb, int m, int n, int k, float alpha, uintptr_t a, int lda,
                         uintptr_t b, int ldb, float beta, uintptr_t c, int ldc, int c16) {
	return (int)cublasGemmEx(dsx_handle, op(ta), op(tb), m, n, k, &alpha, (const void *)a, CUDA_R_16BF, lda,
	                         (const void *)b, CUDA_R_16BF, ldb, &beta, (void *)c, c16 ? CUDA_R_16BF : CUDA_R_32F, ldc,
	                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}
*/
import "C"

import (
	"fmt"

	"dsx/backend"
	"dsx/backend/cuda/lower"
)

func blasInit() error {
	if s := C.dsx_blas_init(); s != 0 {
		return fmt.Errorf("cublasCreate: status %d", int(s))
	}
	return nil
}

var curMode = -1

// gemm computes, in row-major terms, C (m×n) = op(A)·op(B) + beta·C with
// op(A) m×k and op(B) k×n, A stored with lda columns, B with ldb: cuBLAS is
// column-major, so it computes Cᵀ = op(B)ᵀ·op(A)ᵀ on the same memory. In
// BF16 mode, a and b hold bfloat16 and c float32, or bfloat16 when C16.
// Called on the device thread.
func gemm(g lower.GemmCall) error {
	bi := func(x bool) C.int {
		if x {
			return 1
		}
		return 0
	}
	mm := 0
	if g.Mode == backend.TF32 {
		mm = 1
	}
	if mm != curMode {
		if s := C.dsx_math_mode(C.int(mm)); s != 0 {
			return fmt.Errorf("cuda: cublasSetMathMode: status %d", int(s))
		}
		curMode = mm
	}
	var s C.int
	m, n, k := C.int(g.M), C.int(g.N), C.int(g.K)
	a, b, c := C.uintptr_t(g.A), C.uintptr_t(g.B), C.uintptr_t(g.C)
	ldc := n
	if g.Ldc > 0 {
		ldc = C.int(g.Ldc)
	}
	switch {
	case g.Mode == backend.BF16:
		s = C.dsx_gemm_bf16(bi(g.TB), bi(g.TA), n, m, k, 1, b, C.int(g.Ldb), a, C.int(g.Lda), C.float(g.Beta), c, ldc, bi(g.C16))
	case g.F32:
		s = C.dsx_sgemm(bi(g.TB), bi(g.TA), n, m, k, 1, b, C.int(g.Ldb), a, C.int(g.Lda), C.float(g.Beta), c, ldc)
	default:
		s = C.dsx_dgemm(bi(g.TB), bi(g.TA), n, m, k, 1, b, C.int(g.Ldb), a, C.int(g.Lda), C.double(g.Beta), c, ldc)
	}
	if s != 0 {
		return fmt.Errorf("cuda: cuBLAS gemm %s (%d×%d×%d): status %d", g.Describe, g.M, g.N, g.K, int(s))
	}
	return nil
}
