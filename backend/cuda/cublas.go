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

// bfloat16 A and B, float32 C, float32 accumulation.
static int dsx_gemm_bf16(int ta, int tb, int m, int n, int k, float alpha, uintptr_t a, int lda,
                         uintptr_t b, int ldb, float beta, uintptr_t c, int ldc) {
	return (int)cublasGemmEx(dsx_handle, op(ta), op(tb), m, n, k, &alpha, (const void *)a, CUDA_R_16BF, lda,
	                         (const void *)b, CUDA_R_16BF, ldb, &beta, (void *)c, CUDA_R_32F, ldc,
	                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}
*/
import "C"

import (
	"fmt"

	"gorgonia.org/cu"
)

// Matrix modes of a gemm call.
const (
	modeFP32 = iota // float32 or float64 as stored
	modeTF32        // float32 on TF32 tensor cores
	modeBF16        // bfloat16 operands, float32 product
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
// modeBF16, a and b hold bfloat16 and c float32. Called on the device thread.
func gemm(f32 bool, mode int, tA, tB bool, m, n, k int, a cu.DevicePtr, lda int, b cu.DevicePtr, ldb int, beta float64, c cu.DevicePtr) error {
	bi := func(x bool) C.int {
		if x {
			return 1
		}
		return 0
	}
	mm := 0
	if mode == modeTF32 {
		mm = 1
	}
	if mm != curMode {
		if s := C.dsx_math_mode(C.int(mm)); s != 0 {
			return fmt.Errorf("cuda: cublasSetMathMode: status %d", int(s))
		}
		curMode = mm
	}
	var s C.int
	switch {
	case mode == modeBF16:
		s = C.dsx_gemm_bf16(bi(tB), bi(tA), C.int(n), C.int(m), C.int(k), 1, C.uintptr_t(b), C.int(ldb), C.uintptr_t(a), C.int(lda), C.float(beta), C.uintptr_t(c), C.int(n))
	case f32:
		s = C.dsx_sgemm(bi(tB), bi(tA), C.int(n), C.int(m), C.int(k), 1, C.uintptr_t(b), C.int(ldb), C.uintptr_t(a), C.int(lda), C.float(beta), C.uintptr_t(c), C.int(n))
	default:
		s = C.dsx_dgemm(bi(tB), bi(tA), C.int(n), C.int(m), C.int(k), 1, C.uintptr_t(b), C.int(ldb), C.uintptr_t(a), C.int(lda), C.double(beta), C.uintptr_t(c), C.int(n))
	}
	if s != 0 {
		return fmt.Errorf("cuda: cuBLAS gemm %d×%d×%d: status %d", m, n, k, int(s))
	}
	return nil
}
