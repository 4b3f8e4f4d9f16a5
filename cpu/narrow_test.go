package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"dsx/internal/dense"
	"dsx/internal/tol"

	"gonum.org/v1/gonum/blas"
)

// TestNarrowKernels: each narrow kernel (x·W with T ≤ 32 columns, xᵀ·dz
// with T ≤ 32, dz·Wᵀ with T ≤ 32 inner) equals gonum's general GEMM in
// float32 and float64, with padded leading dimensions, α and β not 1 and
// sizes that leave tails of the 8-lane kernels, within tol.F32/F64 (sums
// of ≤ 1024 products in another order).
func TestNarrowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		name    string
		tA, tB  blas.Transpose
		m, n, k int
		want    narrowKind
	}{
		{"x·W", blas.NoTrans, blas.NoTrans, 67, 10, 203, narrowNN},
		{"xᵀ·dz", blas.Trans, blas.NoTrans, 203, 7, 67, narrowTN},
		{"dz·Wᵀ", blas.NoTrans, blas.Trans, 67, 203, 10, narrowNT},
		{"x·W, 1 column", blas.NoTrans, blas.NoTrans, 33, 1, 9, narrowNN},
	} {
		if got := narrow(c.tA, c.tB, c.m, c.n, c.k, true); got != c.want {
			t.Fatalf("%s: kernel %d, want %d", c.name, got, c.want)
		}
		ra, ca, rb, cb := c.m, c.k, c.k, c.n
		if c.tA == blas.Trans {
			ra, ca = c.k, c.m
		}
		if c.tB == blas.Trans {
			rb, cb = c.n, c.k
		}
		lda, ldb, ldc := ca+3, cb+2, c.n+5
		a, b, c0 := norm(r, ra*lda), norm(r, rb*ldb), norm(r, c.m*ldc)
		want := append([]float64(nil), c0...)
		impl.Dgemm(c.tA, c.tB, c.m, c.n, c.k, 1.5, a, lda, b, ldb, 0.5, want, ldc)
		got64 := append([]float64(nil), c0...)
		gemmNarrow(&pool64, c.want, c.m, c.n, c.k, 1.5, a, lda, b, ldb, 0.5, got64, ldc)
		tol.Expect(t, c.name+" float64", got64, want, tol.F64)
		for _, fma := range []bool{false, true} {
			if fma && !useFMA {
				continue
			}
			saved := useFMA
			useFMA = fma
			got32 := dense.Convert[float32](c0)
			gemmNarrow(&pool32, c.want, c.m, c.n, c.k, 1.5, dense.Convert[float32](a), lda, dense.Convert[float32](b), ldb, 0.5, got32, ldc)
			useFMA = saved
			what := c.name + " float32 gonum"
			if fma {
				what = c.name + " float32 FMA"
			}
			tol.Expect(t, what, dense.Convert[float64](got32), want, tol.F32)
		}
	}
}

// TestNarrowSplit: the narrow kernels give the same bits however the
// worker pool splits C's rows (TestDeterministic's claim for DSX_BLAS=off,
// whose narrow products these are): GOMAXPROCS 1, 2, 3 and 4.
func TestNarrowSplit(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 1001, 10, 999 // splits fall inside the 8-lane blocks
	for _, kind := range []narrowKind{narrowNN, narrowTN, narrowNT} {
		mm, nn, kk := m, n, k
		ra, ca, rb, cb := mm, kk, kk, nn
		switch kind {
		case narrowTN:
			ra, ca = kk, mm
		case narrowNT:
			nn, kk = k, n
			ra, ca, rb, cb = mm, kk, nn, kk
		}
		a, b := rnd(r, ra*ca), rnd(r, rb*cb)
		var first []float32
		for _, p := range []int{1, 2, 3, 4} {
			runtime.GOMAXPROCS(p)
			c := make([]float32, mm*nn)
			gemmNarrow(&pool32, kind, mm, nn, kk, 1, a, ca, b, cb, 0, c, nn)
			if first == nil {
				first = c
				continue
			}
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("kernel %d, GOMAXPROCS %d: element %d = %v, with 1 worker %v", kind, p, i, c[i], first[i])
				}
			}
		}
	}
}

// TestFMAKernels: the assembly's axpy rounds once (y + a·x correctly
// rounded to float32: within half an ulp of the exact value, which float64
// holds) and its dot equals a float64 sum within float32 rounding.
func TestFMAKernels(t *testing.T) {
	if !useFMA {
		t.Skip("no AVX2 and FMA on this CPU (or built with -tags purego)")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{8, 24, 32, 40, 1000} {
		x, y := rnd(r, n), rnd(r, n)
		a := float32(r.NormFloat64())
		got := append([]float32(nil), y...)
		axpy32x8(a, &x[0], &got[0], n&^7)
		for i := 0; i < n&^7; i++ {
			exact := float64(a)*float64(x[i]) + float64(y[i])
			ulp := float64(math.Nextafter32(float32(math.Abs(float64(got[i]))), float32(math.Inf(1)))) - math.Abs(float64(got[i]))
			if d := math.Abs(float64(got[i]) - exact); d > ulp/2 {
				t.Fatalf("n %d: axpy element %d = %v, exact %v (off by %.3g ulp)", n, i, got[i], exact, d/ulp)
			}
		}
		s := 0.0
		for i := 0; i < n&^7; i++ {
			s += float64(x[i]) * float64(y[i])
		}
		d := dot32x8(&x[0], &y[0], n&^7)
		tol.Expect(t, "dot", []float64{float64(d)}, []float64{s}, tol.F32)
	}
}

func norm(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}
