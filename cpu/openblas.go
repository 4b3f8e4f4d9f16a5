//go:build openblas

package cpu

/*
#cgo LDFLAGS: -lopenblas
// CBLAS and OpenBLAS entry points (Debian's libopenblas-dev); declared here
// rather than through cblas.h so that any CBLAS header layout works.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
void cblas_dgemm(int order, int transA, int transB, int m, int n, int k,
	double alpha, const double *a, int lda, const double *b, int ldb,
	double beta, double *c, int ldc);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

#include <stdint.h>
#include <string.h>

// dsx_exp_sub32 is graph.expSub32 in C so that GCC vectorises it: the same
// Cephes polynomial for exp(z_c - m), terms written to e, their sum in
// double (8 partial sums). target_clones picks the AVX2 version at load time
// where the CPU has it. NaN propagates; z_c - m below -87.34 gives 0.
// (no-trapping-math lets GCC turn the select into a blend, and so vectorise.)
__attribute__((target_clones("avx2", "default"), optimize("O3", "no-trapping-math", "no-math-errno")))
static double dsx_exp_sub32(const float *z, float m, float *e, long n) {
	const float log2e = 1.44269504088896341f, c1 = 0.693359375f, c2 = -2.12194440e-4f, lo = -87.33654f;
	const float p0 = 1.9875691500e-4f, p1 = 1.3981999507e-3f, p2 = 8.3334519073e-3f,
	            p3 = 4.1665795894e-2f, p4 = 1.6666665459e-1f, p5 = 5.0000001201e-1f;
	for (long i = 0; i < n; i++) {
		float x = z[i] - m;
		int nx = -(int)(0.5f - x * log2e);
		float f = (float)nx;
		float r = x - f * c1 - f * c2;
		float p = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5;
		int32_t bits = (nx + 127) << 23;
		float scale;
		memcpy(&scale, &bits, 4);
		float ex = (p * r * r + r + 1.0f) * scale;
		e[i] = x < lo ? 0.0f : ex;
	}
	double s[8] = {0};
	long i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++) s[k] += (double)e[i + k];
	for (; i < n; i++) s[0] += (double)e[i];
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}
*/
import "C"

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"dsx/graph"

	"gonum.org/v1/gonum/blas"
)

// BLASName says which general GEMM this build uses.
const BLASName = "openblas"

// Threading: OpenBLAS's own threads busy-wait between calls and then compete
// with Go's scheduler for the same cores. This build runs OpenBLAS with one
// thread and splits each product over the rows of C in GOMAXPROCS chunks on
// dsx's worker pool (one single-threaded OpenBLAS call per chunk), so the
// only threads that run are Go's. DSX_OPENBLAS_THREADS=n (n > 1) instead
// lets OpenBLAS thread each product itself with n threads (for comparison).
var openblasThreads = 1

func init() {
	if n, err := strconv.Atoi(os.Getenv("DSX_OPENBLAS_THREADS")); err == nil && n > 0 {
		openblasThreads = n
	}
	C.openblas_set_num_threads(C.int(openblasThreads))
	// The narrow products (T ≤ narrowN) are OpenBLAS's too: its small-n
	// kernels beat gonum's dot/axpy ones (measured in bench/RESULTS.md).
	forceGeneralGEMM = os.Getenv("DSX_OPENBLAS_NARROW") != "go"
	graph.ExpSub32 = expSub32C
}

// expSub32C is graph.ExpSub32 through the vectorised C loop.
func expSub32C(z []float32, m float32, e []float32) float64 {
	if len(z) == 0 {
		return 0
	}
	return float64(C.dsx_exp_sub32((*C.float)(unsafe.Pointer(&z[0])), C.float(m), (*C.float)(unsafe.Pointer(&e[0])), C.long(len(z))))
}

const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

func cblasT(t blas.Transpose) C.int {
	if t == blas.NoTrans {
		return cblasNoTrans
	}
	return cblasTrans
}

// gemmTask is one product split over row chunks of C.
type gemmTask[F graph.Float] struct {
	tA, tB        blas.Transpose
	n, k          int
	alpha, beta   F
	a, b, c       []F
	lda, ldb, ldc int
}

var (
	gpool32 = sync.Pool{New: func() any { return new(gemmTask[float32]) }}
	gpool64 = sync.Pool{New: func() any { return new(gemmTask[float64]) }}
)

// RunRange computes rows [lo, hi) of C with one OpenBLAS call.
func (t *gemmTask[F]) RunRange(lo, hi int) {
	aoff := lo * t.lda // rows of A
	if t.tA == blas.Trans {
		aoff = lo // columns of the stored A
	}
	m := hi - lo
	switch a := any(t.a).(type) {
	case []float32:
		b, c := any(t.b).([]float32), any(t.c).([]float32)
		C.cblas_sgemm(cblasRowMajor, cblasT(t.tA), cblasT(t.tB), C.int(m), C.int(t.n), C.int(t.k),
			C.float(t.alpha), (*C.float)(unsafe.Pointer(&a[aoff])), C.int(t.lda),
			(*C.float)(unsafe.Pointer(unsafe.SliceData(b))), C.int(t.ldb),
			C.float(t.beta), (*C.float)(unsafe.Pointer(&c[lo*t.ldc])), C.int(t.ldc))
	case []float64:
		b, c := any(t.b).([]float64), any(t.c).([]float64)
		C.cblas_dgemm(cblasRowMajor, cblasT(t.tA), cblasT(t.tB), C.int(m), C.int(t.n), C.int(t.k),
			C.double(t.alpha), (*C.double)(unsafe.Pointer(&a[aoff])), C.int(t.lda),
			(*C.double)(unsafe.Pointer(unsafe.SliceData(b))), C.int(t.ldb),
			C.double(t.beta), (*C.double)(unsafe.Pointer(&c[lo*t.ldc])), C.int(t.ldc))
	}
}

func gemmSplit[F graph.Float](p *sync.Pool, tA, tB blas.Transpose, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	// Let gonum validate the arguments (panics as BLAS would) on tiny
	// products, which are also faster without cgo.
	if m*n*k < 4096 || k == 0 {
		switch aa := any(a).(type) {
		case []float32:
			impl.Sgemm(tA, tB, m, n, k, float32(alpha), aa, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		case []float64:
			impl.Dgemm(tA, tB, m, n, k, float64(alpha), aa, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
		}
		return
	}
	t := p.Get().(*gemmTask[F])
	*t = gemmTask[F]{tA: tA, tB: tB, n: n, k: k, alpha: alpha, beta: beta, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc}
	chunks := 1
	if openblasThreads == 1 {
		chunks = graph.Chunks(m, 1)
		if w := m * n * k / gemmGrain; w < chunks {
			chunks = w
		}
		if chunks > runtime.GOMAXPROCS(0) {
			chunks = runtime.GOMAXPROCS(0)
		}
	}
	graph.ParallelChunks(m, chunks, t)
	*t = gemmTask[F]{}
	p.Put(t)
}

func gemmS(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmSplit(&gpool32, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemmD(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemmSplit(&gpool64, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
