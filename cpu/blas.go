package cpu

import (
	"sync"

	"dsx/internal/dense"
	"dsx/internal/pool"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// The layer's three products are x·W (B×N by N×T), xᵀ·dz (N×B by B×T) and,
// with dx, dz·Wᵀ (B×T by T×N). With few classes T one dimension of each is
// T, and a general GEMM blocked for square matrices spends its time in
// short inner loops (gonum's runs one axpy of length T per element of x;
// OpenBLAS's generic kernels pack and pad panels of T). blasImpl (the BLAS
// of the VM's ops and of the chunk loop) handles those narrow products as
// long vector operations instead, split over rows in a few chunks:
//
//	x·W:   C[i,c]  = x[i,:]·Wᵀ[c,:]           dot products of length N (narrowNN)
//	xᵀ·dz: Cᵀ[c,:] += dz[l,c]·x[l,:]          axpys of length N, one pass over x (narrowTN)
//	dz·Wᵀ: C[i,:]  += dz[i,l]·Wᵀ[l,:]          axpys of length N into C's row (narrowNT)
//
// In float32 on a CPU with AVX2 and FMA the dots and axpys run in assembly
// (narrow_amd64.s), eight lanes and four accumulators wide: about twice as
// fast as OpenBLAS's generic kernels on these shapes, but slower than its
// AVX-512 ones (BenchmarkNarrow, bench/RESULTS.md), so they run when no
// system BLAS loaded or when it runs generic kernels on this CPU
// (sysblas.Info.Generic). Elsewhere (float64, no AVX2) they are gonum's
// dot and axpy, and a loaded system BLAS takes the narrow products (its
// small-n kernels beat those). Everything else goes to the general GEMM
// (gemmS/gemmD): the system's BLAS when one loaded at run time
// (sysgemm.go), gonum's otherwise.
type blasImpl struct{ gonum.Implementation }

// narrowN is the widest narrow dimension handled by the narrow kernels.
const narrowN = 32

// gemmGrain is the work (multiply-adds) below which a product runs on one
// goroutine.
const gemmGrain = 1 << 16

func init() { G.Use(blasImpl{}) }

func (blasImpl) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if kind := narrow(tA, tB, m, n, k, useFMA && genericBLAS()); kind != notNarrow {
		gemmNarrow(&pool32, kind, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmS(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (blasImpl) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if kind := narrow(tA, tB, m, n, k, false); kind != notNarrow {
		gemmNarrow(&pool64, kind, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmD(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// narrowKind is which narrow kernel a product takes.
type narrowKind int

const (
	notNarrow narrowKind = iota
	narrowNN             // C = A·B, n ≤ narrowN
	narrowTN             // C = Aᵀ·B, n ≤ narrowN
	narrowNT             // C = A·Bᵀ, k ≤ narrowN < n
)

// narrow says which narrow kernel runs a product, if any: always where
// fast (the FMA kernels), else when no system BLAS loaded or narrowGo.
func narrow(tA, tB blas.Transpose, m, n, k int, fast bool) narrowKind {
	if forceGeneralGEMM || m < 1 || n < 1 || k < 1 || !(fast || narrowGo || sysBLAS() == nil) {
		return notNarrow
	}
	switch {
	case tB == blas.NoTrans && tA == blas.NoTrans && n <= narrowN:
		return narrowNN
	case tB == blas.NoTrans && tA == blas.Trans && n <= narrowN:
		return narrowTN
	case tB == blas.Trans && tA == blas.NoTrans && k <= narrowN && n > narrowN:
		return narrowNT
	}
	return notNarrow
}

// genericBLAS: no system BLAS loaded, or it runs generic kernels on this
// CPU.
func genericBLAS() bool {
	l := sysBLAS()
	return l == nil || l.Info().Generic
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
	kind        narrowKind
	m, n, k     int
	alpha, beta F
	a, b, c     []F
	lda, ldb    int
	ldc         int
	s           []F // NN: Bᵀ (n×k); TN: Cᵀ by column chunk (n×m); NT: Bᵀ (k×n)
}

func gemmNarrow[F dense.Float](p *sync.Pool, kind narrowKind, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	t := p.Get().(*narrowTask[F])
	t.kind, t.m, t.n, t.k, t.alpha, t.beta = kind, m, n, k, alpha, beta
	t.a, t.b, t.c, t.lda, t.ldb, t.ldc = a, b, c, lda, ldb, ldc
	need := n * k
	if kind == narrowTN {
		need = n * m
	}
	if cap(t.s) < need {
		t.s = make([]F, need)
	}
	t.s = t.s[:need]
	switch kind {
	case narrowNN: // Bᵀ: row j holds column j of B (k×n)
		for l := 0; l < k; l++ {
			for j, v := range b[l*ldb : l*ldb+n] {
				t.s[j*k+l] = v
			}
		}
	case narrowNT: // Bᵀ: row l holds column l of B (n×k)
		for j := 0; j < n; j++ {
			for l, v := range b[j*ldb : j*ldb+k] {
				t.s[l*n+j] = v
			}
		}
	}
	// Each kernel splits the rows of C. TN's rows are the axpys' elements:
	// they are split in blocks of 8, so that where an element falls in the
	// FMA kernel's lanes or tail, and so its rounding, does not depend on
	// the split.
	units, grain := m, max(1, gemmGrain/(n*k))
	if kind == narrowTN {
		units, grain = (m+7)/8, max(1, grain/8)
	}
	pool.Parallel(units, grain, t)
	t.a, t.b, t.c = nil, nil, nil
	p.Put(t)
}

// RunRange computes rows [lo, hi) of C (blocks of 8 rows for TN).
func (t *narrowTask[F]) RunRange(lo, hi int) {
	n, k := t.n, t.k
	switch t.kind {
	case narrowNN:
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
	case narrowNT:
		for i := lo; i < hi; i++ {
			ai := t.a[i*t.lda : i*t.lda+k]
			ci := t.c[i*t.ldc : i*t.ldc+n]
			scale(t.beta, ci)
			for l, v := range ai {
				if v != 0 {
					axpy(t.alpha*v, t.s[l*n:(l+1)*n], ci)
				}
			}
		}
	case narrowTN:
		lo, hi = lo*8, min(hi*8, t.m)
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
}

// scale sets y to β·y (0 when β is 0, whatever y held).
func scale[F dense.Float](beta F, y []F) {
	switch beta {
	case 0:
		clear(y)
	case 1:
	default:
		for i := range y {
			y[i] *= beta
		}
	}
}

var impl gonum.Implementation

func dot[F dense.Float](x, y []F) F {
	switch xx := any(x).(type) {
	case []float32:
		yy := any(y).([]float32)
		if useFMA {
			return F(dotFMA(xx, yy))
		}
		return F(impl.Sdot(len(xx), xx, 1, yy, 1))
	case []float64:
		return F(impl.Ddot(len(xx), xx, 1, any(y).([]float64), 1))
	}
	panic("unreachable")
}

func axpy[F dense.Float](alpha F, x, y []F) {
	switch xx := any(x).(type) {
	case []float32:
		yy := any(y).([]float32)
		if useFMA {
			axpyFMA(float32(alpha), xx, yy)
			return
		}
		impl.Saxpy(len(xx), float32(alpha), xx, 1, yy, 1)
	case []float64:
		impl.Daxpy(len(xx), float64(alpha), xx, 1, any(y).([]float64), 1)
	}
}

// dotFMA is Σ x[i]·y[i]: the assembly over the first len(x)&^7 elements,
// the rest in Go.
func dotFMA(x, y []float32) float32 {
	n8 := len(x) &^ 7
	s := float32(0)
	if n8 > 0 {
		s = dot32x8(&x[0], &y[:n8][0], n8)
	}
	for i := n8; i < len(x); i++ {
		s += x[i] * y[i]
	}
	return s
}

// axpyFMA is y[i] += a·x[i]: the assembly over the first len(x)&^7
// elements, the rest in Go.
func axpyFMA(a float32, x, y []float32) {
	n8 := len(x) &^ 7
	if n8 > 0 {
		axpy32x8(a, &x[0], &y[:n8][0], n8)
	}
	for i := n8; i < len(x); i++ {
		y[i] += a * x[i]
	}
}
