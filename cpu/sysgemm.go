package cpu

import (
	"runtime"
	"sync"

	"dsx/internal/dense"
	"dsx/internal/pool"
	"dsx/internal/sysblas"

	"gonum.org/v1/gonum/blas"
)

// The general products go to the system's BLAS when one loads at run time
// (package sysblas: OpenBLAS on Linux, Accelerate on macOS, DSX_BLAS=off|PATH
// chooses), and to gonum's pure-Go GEMM otherwise.
//
// Threading: OpenBLAS's own threads busy-wait between calls and then compete
// with Go's scheduler for the same cores. So dsx sets the library to one
// thread and splits each product over the rows of C in up to GOMAXPROCS
// chunks on its worker pool (one single-threaded call per chunk): the only
// threads that run are Go's. DSX_BLAS_THREADS=n (n > 1) instead lets the
// library thread each product itself with n threads, and a library dsx
// cannot set (Accelerate, or a DSX_BLAS=PATH without openblas_set_num_threads)
// threads as it likes and gets one call per product.

// sysBLAS is the loaded library, or nil; it loads on first use, so that a
// process that never runs a product on the CPU (dsx-gpu on a GPU) never
// opens it.
func sysBLAS() *sysblas.Lib {
	l, _ := sysblas.Load()
	return l
}

// BLASReport says which GEMM the CPU backend uses (for `dsx devices`).
type BLASReport struct {
	sysblas.Info
	// Workers is the number of single-threaded calls one large product is
	// split into (GOMAXPROCS), or 1 when the library threads itself.
	Workers int `json:"workers"`
}

// BLAS loads the system's BLAS if it has not been, and reports on it; when
// none loaded, Name is "gonum" and Reason says why.
func BLAS() BLASReport {
	l, in := sysblas.Load()
	r := BLASReport{Info: in, Workers: 1}
	if l == nil {
		r.Name = "gonum"
		return r
	}
	if in.Threads == 1 {
		r.Workers = runtime.GOMAXPROCS(0)
	}
	return r
}

// gemmTask is one product split over row chunks of C, or over column
// chunks (cols).
type gemmTask[F dense.Float] struct {
	lib           *sysblas.Lib
	tA, tB        bool
	cols          bool
	m, n, k       int
	alpha, beta   F
	a, b, c       []F
	lda, ldb, ldc int
}

var (
	gpool32 = sync.Pool{New: func() any { return new(gemmTask[float32]) }}
	gpool64 = sync.Pool{New: func() any { return new(gemmTask[float64]) }}
)

// RunRange computes rows [lo, hi) of C, or columns [lo, hi) when t.cols,
// with one BLAS call.
func (t *gemmTask[F]) RunRange(lo, hi int) {
	m, n, aoff, boff, coff := hi-lo, t.n, lo*t.lda, 0, lo*t.ldc // rows of A and C
	if t.tA {
		aoff = lo // columns of the stored A
	}
	if t.cols {
		m, n, aoff, boff, coff = t.m, hi-lo, 0, lo, lo // columns of B and C
		if t.tB {
			boff = lo * t.ldb // rows of the stored B
		}
	}
	switch a := any(t.a).(type) {
	case []float32:
		b, c := any(t.b).([]float32), any(t.c).([]float32)
		t.lib.Sgemm(t.tA, t.tB, m, n, t.k, float32(t.alpha), a[aoff:], t.lda, b[boff:], t.ldb, float32(t.beta), c[coff:], t.ldc)
	case []float64:
		b, c := any(t.b).([]float64), any(t.c).([]float64)
		t.lib.Dgemm(t.tA, t.tB, m, n, t.k, float64(t.alpha), a[aoff:], t.lda, b[boff:], t.ldb, float64(t.beta), c[coff:], t.ldc)
	}
}

func gemmSplit[F dense.Float](p *sync.Pool, tA, tB blas.Transpose, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	lib := sysBLAS()
	// gonum: when no library loaded, for tiny products (faster without the
	// call into C), and for arguments the library cannot take; gonum also
	// checks the arguments and panics as BLAS would.
	if lib == nil || m*n*k < 4096 || k == 0 || m == 0 || n == 0 || !sysblas.Fits(m, n, k, lda, ldb, ldc) ||
		(tA != blas.NoTrans && tA != blas.Trans) || (tB != blas.NoTrans && tB != blas.Trans) {
		switch aa := any(a).(type) {
		case []float32:
			impl.Sgemm(tA, tB, m, n, k, float32(alpha), aa, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		case []float64:
			impl.Dgemm(tA, tB, m, n, k, float64(alpha), aa, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
		}
		return
	}
	t := p.Get().(*gemmTask[F])
	*t = gemmTask[F]{lib: lib, tA: tA == blas.Trans, tB: tB == blas.Trans, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc}
	// Each call reads all of the operand whose dimension is not split
	// (and packs it): split C's rows when op(B) (k×n) is the smaller, its
	// columns when op(A) (m×k) is. A chunk's x·W, few rows against a wide
	// W, splits W's columns so that each worker packs its own half.
	t.cols = n > m
	split := m
	if t.cols {
		split = n
	}
	chunks := 1
	if lib.Info().Threads == 1 {
		chunks = pool.Chunks(split, 1)
		if w := m * n * k / gemmGrain; w < chunks {
			chunks = w
		}
	}
	pool.ParallelChunks(split, chunks, t)
	*t = gemmTask[F]{}
	p.Put(t)
}

func gemmS(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmSplit(&gpool32, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemmD(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemmSplit(&gpool64, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
