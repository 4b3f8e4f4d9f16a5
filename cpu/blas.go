package cpu

import (
	"sync"

	"dsx/internal/dense"
	"dsx/internal/pool"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// The layer graph's two products are x·W (B×N by N×T) and xᵀ·dz (N×B by
// B×T). With few classes T the result has T ≤ narrowN columns, and a general
// GEMM blocked for square matrices spends its time in short inner loops
// (gonum's runs one axpy of length T per element of x). blasImpl keeps the
// VM's ops and gives them a BLAS that handles those narrow products as long
// vector operations instead, split over rows in a few chunks:
//
//	x·W:  C[i,c] = x[i,:]·Wᵀ[c,:]           (dot products of length N)
//	xᵀ·dz: Cᵀ[c,:] += dz[l,c]·x[l,:]         (axpys of length N, one pass over x)
//
// Everything else goes to the general GEMM (gemmS/gemmD): the system's BLAS
// when one loaded at run time (sysgemm.go), gonum's otherwise. With a
// system BLAS the narrow products go to it too: its small-n kernels beat
// the dot/axpy ones (measured in bench/RESULTS.md).
type blasImpl struct{ gonum.Implementation }

// narrowN is the widest C handled by the narrow kernels.
const narrowN = 32

// gemmGrain is the work (multiply-adds) below which a product runs on one
// goroutine.
const gemmGrain = 1 << 16

func init() { G.Use(blasImpl{}) }

func (blasImpl) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if narrow(tA, tB, m, n, k) {
		gemmNarrow(&pool32, tA, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmS(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (blasImpl) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if narrow(tA, tB, m, n, k) {
		gemmNarrow(&pool64, tA, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmD(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func narrow(tA, tB blas.Transpose, m, n, k int) bool {
	return tB == blas.NoTrans && (tA == blas.NoTrans || tA == blas.Trans) &&
		n >= 1 && n <= narrowN && m >= 1 && k >= 1 && !forceGeneralGEMM && (narrowGo || sysBLAS() == nil)
}

// narrowGo keeps the narrow products on the Go kernels even when a system
// BLAS loaded (BenchmarkNarrow compares the two).
var narrowGo = false

// forceGeneralGEMM sends every product to gemmS/gemmD (tests and
// measurements).
var forceGeneralGEMM = false

var (
	pool32 = sync.Pool{New: func() any { return new(narrowTask[float32]) }}
	pool64 = sync.Pool{New: func() any { return new(narrowTask[float64]) }}
)

// narrowTask holds one narrow product's operands and scratch; tasks are
// pooled so that a warm product allocates nothing.
type narrowTask[F dense.Float] struct {
	trans       bool
	m, n, k     int
	alpha, beta F
	a, b, c     []F
	lda, ldb    int
	ldc         int
	s           []F // NN: Bᵀ (n×k); TN: Cᵀ by column chunk (n×m)
}

func gemmNarrow[F dense.Float](p *sync.Pool, tA blas.Transpose, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	t := p.Get().(*narrowTask[F])
	t.trans, t.m, t.n, t.k, t.alpha, t.beta = tA == blas.Trans, m, n, k, alpha, beta
	t.a, t.b, t.c, t.lda, t.ldb, t.ldc = a, b, c, lda, ldb, ldc
	need := n * k
	if t.trans {
		need = n * m
	}
	if cap(t.s) < need {
		t.s = make([]F, need)
	}
	t.s = t.s[:need]
	rows := m // both kernels split the rows of C
	grain := gemmGrain / (n * k)
	if grain < 1 {
		grain = 1
	}
	if !t.trans {
		// Bᵀ: row c holds column c of B.
		for l := 0; l < k; l++ {
			row := b[l*ldb : l*ldb+n]
			for j, v := range row {
				t.s[j*k+l] = v
			}
		}
	}
	pool.Parallel(rows, grain, t)
	t.a, t.b, t.c = nil, nil, nil
	p.Put(t)
}

// RunRange computes rows [lo, hi) of C.
func (t *narrowTask[F]) RunRange(lo, hi int) {
	n, k := t.n, t.k
	if !t.trans {
		for i := lo; i < hi; i++ {
			ai := t.a[i*t.lda : i*t.lda+k]
			ci := t.c[i*t.ldc : i*t.ldc+n]
			for j := range ci {
				d := t.alpha * dot(ai, t.s[j*k:(j+1)*k])
				if t.beta != 0 {
					d += t.beta * ci[j]
				}
				ci[j] = d
			}
		}
		return
	}
	// Cᵀ[:, lo:hi] += B[l, j]·A[l, lo:hi] over l: A (k×m) read once, row by row.
	w := hi - lo
	ct := t.s[n*lo : n*hi]
	clear(ct)
	for l := 0; l < k; l++ {
		al := t.a[l*t.lda+lo : l*t.lda+hi]
		bl := t.b[l*t.ldb : l*t.ldb+n]
		for j, v := range bl {
			if v != 0 {
				axpy(v, al, ct[j*w:(j+1)*w])
			}
		}
	}
	for i := lo; i < hi; i++ {
		ci := t.c[i*t.ldc : i*t.ldc+n]
		for j := range ci {
			d := t.alpha * ct[j*w+i-lo]
			if t.beta != 0 {
				d += t.beta * ci[j]
			}
			ci[j] = d
		}
	}
}

var impl gonum.Implementation

func dot[F dense.Float](x, y []F) F {
	switch xx := any(x).(type) {
	case []float32:
		return F(impl.Sdot(len(xx), xx, 1, any(y).([]float32), 1))
	case []float64:
		return F(impl.Ddot(len(xx), xx, 1, any(y).([]float64), 1))
	}
	panic("unreachable")
}

func axpy[F dense.Float](alpha F, x, y []F) {
	switch xx := any(x).(type) {
	case []float32:
		impl.Saxpy(len(xx), float32(alpha), xx, 1, any(y).([]float32), 1)
	case []float64:
		impl.Daxpy(len(xx), float64(alpha), xx, 1, any(y).([]float64), 1)
	}
}
