package cpu

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestBLASReport: the report names the GEMM in use, and make test's two
// runs (DSX_WANT_BLAS=loaded with the library installed, =off with
// DSX_BLAS=off) fail when the configuration is not the one they test.
func TestBLASReport(t *testing.T) {
	r := BLAS()
	t.Logf("%+v", r)
	switch {
	case r.Loaded && (r.Path == "" || r.Workers < 1):
		t.Errorf("loaded without a path or workers: %+v", r)
	case !r.Loaded && (r.Name != "gonum" || r.Reason == ""):
		t.Errorf("none loaded: name %q, reason %q; want gonum and a reason", r.Name, r.Reason)
	}
	switch want := os.Getenv("DSX_WANT_BLAS"); {
	case want == "loaded" && !r.Loaded:
		t.Fatalf("DSX_WANT_BLAS=loaded: no BLAS loaded: %s", r.Reason)
	case want == "off" && r.Loaded:
		t.Fatalf("DSX_WANT_BLAS=off: %s loaded from %s", r.Name, r.Path)
	}
}

// TestGemmSplit: a product split over row chunks (m ≥ n) or column chunks
// (n > m), one BLAS call per chunk, equals gonum's in all four transpose
// cases with padded leading dimensions (A's row-chunk offset differs
// between A and Aᵀ, B's column-chunk offset between B and Bᵀ), within the
// rounding of sums of k float32 products in another order: 4k·eps relative
// to the magnitude of Σ|a||b| (≤ 10 for these entries).
func TestGemmSplit(t *testing.T) {
	if !BLAS().Loaded {
		t.Skipf("no BLAS loaded (%s): gemmS is gonum's", BLAS().Reason)
	}
	r := rand.New(rand.NewPCG(5, 6))
	// m·n·k ≥ 2·gemmGrain: both split in two where GOMAXPROCS ≥ 2
	for _, d := range [][3]int{{67, 50, 40}, {41, 67, 60}} {
		testGemmSplit(t, r, d[0], d[1], d[2])
	}
}

func testGemmSplit(t *testing.T, r *rand.Rand, m, n, k int) {
	for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
		for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			ra, ca, rb, cb := m, k, k, n
			if tA == blas.Trans {
				ra, ca = k, m
			}
			if tB == blas.Trans {
				rb, cb = n, k
			}
			lda, ldb, ldc := ca+2, cb+3, n+1
			a, b, c := rnd(r, ra*lda), rnd(r, rb*ldb), rnd(r, m*ldc)
			want := append([]float32(nil), c...)
			impl.Sgemm(tA, tB, m, n, k, 1.5, a, lda, b, ldb, 0.5, want, ldc)
			got := append([]float32(nil), c...)
			gemmS(tA, tB, m, n, k, 1.5, a, lda, b, ldb, 0.5, got, ldc)
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > float64(4*k)*0x1p-23*10 {
					t.Fatalf("m,n,k=%d,%d,%d tA=%v tB=%v: element %d = %v, gonum %v", m, n, k, tA, tB, i, got[i], want[i])
				}
			}
		}
	}
}

func rnd(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}
