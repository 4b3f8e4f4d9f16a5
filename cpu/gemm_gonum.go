//go:build !openblas

package cpu

import "gonum.org/v1/gonum/blas"

// BLASName says which general GEMM this build uses.
const BLASName = "gonum"

// gemmS and gemmD are gonum's pure-Go GEMM (parallel for large products).
func gemmS(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemmD(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	impl.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
