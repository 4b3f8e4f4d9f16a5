package sysblas

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"dsx/internal/dense"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// lib is the default library, or the test skips saying why. With
// DSX_WANT_BLAS=loaded (make test) a missing library fails instead.
func lib(t *testing.T) *Lib {
	t.Helper()
	l, in := Load()
	if l == nil {
		if os.Getenv("DSX_WANT_BLAS") == "loaded" {
			t.Fatalf("DSX_WANT_BLAS=loaded but no BLAS loaded: %s", in.Reason)
		}
		t.Skipf("no BLAS loaded: %s", in.Reason)
	}
	return l
}

func tr(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// TestGemmMatchesGonum: row-major products in all four transpose cases,
// with leading dimensions wider than the rows and both alpha and beta
// non-trivial, equal gonum's within float rounding: each element is a sum
// of k products, so they differ by the order of additions only: relative
// to Σ|a||b|, 4k·eps.
func TestGemmMatchesGonum(t *testing.T) {
	l := lib(t)
	r := rand.New(rand.NewPCG(1, 2))
	var g gonum.Implementation
	for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {7, 5, 3}, {64, 10, 100}, {33, 130, 17}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				m, n, k := s.m, s.n, s.k
				ra, ca, rb, cb := m, k, k, n
				if tA {
					ra, ca = k, m
				}
				if tB {
					rb, cb = n, k
				}
				lda, ldb, ldc := ca+3, cb+1, n+2
				a64, b64, c64 := randm(r, ra*lda), randm(r, rb*ldb), randm(r, m*ldc)
				want := append([]float64(nil), c64...)
				g.Dgemm(tr(tA), tr(tB), m, n, k, 0.7, a64, lda, b64, ldb, -1.3, want, ldc)
				got := append([]float64(nil), c64...)
				l.Dgemm(tA, tB, m, n, k, 0.7, a64, lda, b64, ldb, -1.3, got, ldc)
				compare(t, "Dgemm", s.m, s.n, s.k, tA, tB, got, want, float64(4*k+4)*0x1p-52*10)

				a32, b32, c32 := dense.Convert[float32](a64), dense.Convert[float32](b64), dense.Convert[float32](c64)
				w32 := append([]float32(nil), c32...)
				g.Sgemm(tr(tA), tr(tB), m, n, k, 0.7, a32, lda, b32, ldb, -1.3, w32, ldc)
				g32 := append([]float32(nil), c32...)
				l.Sgemm(tA, tB, m, n, k, 0.7, a32, lda, b32, ldb, -1.3, g32, ldc)
				compare(t, "Sgemm", s.m, s.n, s.k, tA, tB, dense.Convert[float64](g32), dense.Convert[float64](w32), float64(4*k+4)*0x1p-23*10)
			}
		}
	}
}

// compare checks |got−want| ≤ tol·scale, with scale 10 standing for the
// Σ|a||b| + |c| bound of random normal entries (|x| rarely above 3).
func compare(t *testing.T, what string, m, n, k int, tA, tB bool, got, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("%s %d×%d×%d tA=%v tB=%v: element %d = %v, gonum %v", what, m, n, k, tA, tB, i, got[i], want[i])
		}
	}
}

func randm(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

// TestGemmChecks: arguments that would make the library read or write
// outside a slice panic in Go first, as gonum's do.
func TestGemmChecks(t *testing.T) {
	l := &Lib{} // never called: check panics before
	a, b, c := make([]float32, 6), make([]float32, 6), make([]float32, 4)
	for name, f := range map[string]func(){
		"short a":  func() { l.Sgemm(false, false, 2, 2, 3, 1, a[:5], 3, b, 2, 0, c, 2) },
		"short b":  func() { l.Sgemm(false, false, 2, 2, 3, 1, a, 3, b[:5], 2, 0, c, 2) },
		"short c":  func() { l.Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c[:3], 2) },
		"bad lda":  func() { l.Sgemm(false, false, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) },
		"bad ldc":  func() { l.Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 1) },
		"m < 0":    func() { l.Sgemm(false, false, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2) },
		"too wide": func() { l.Sgemm(false, false, 1, math.MaxInt, 1, 1, a, 1, b, math.MaxInt, 0, c, math.MaxInt) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestGemmAllocs: a call allocates nothing (its arguments live in pooled
// memory), so the CPU backend's warm step stays as it was.
func TestGemmAllocs(t *testing.T) {
	l := lib(t)
	a, b, c := make([]float32, 64*64), make([]float32, 64*64), make([]float32, 64*64)
	if n := testing.AllocsPerRun(50, func() { l.Sgemm(false, true, 64, 64, 64, 1, a, 64, b, 64, 0, c, 64) }); n != 0 {
		t.Errorf("%.1f allocations per Sgemm, want 0", n)
	}
}

// TestLoadChoices: DSX_BLAS=off and a path that does not load say why,
// naming the setting; a library without sgemm_ is refused.
func TestLoadChoices(t *testing.T) {
	if nosysblas {
		t.Skip("built with -tags nosysblas: every choice gives the same reason")
	}
	for _, c := range []struct{ choice, threads, want string }{
		{"off", "", "DSX_BLAS=off"},
		{"/nonexistent/libopenblas.so.0", "", "DSX_BLAS=/nonexistent/libopenblas.so.0: "},
		{"auto", "0", "DSX_BLAS_THREADS=\"0\""},
	} {
		l, in := load(c.choice, c.threads)
		if l != nil || in.Loaded || !strings.Contains(in.Reason, c.want) {
			t.Errorf("DSX_BLAS=%q: loaded %v, reason %q, want it to contain %q", c.choice, in.Loaded, in.Reason, c.want)
		}
	}
}

// TestDefaultSearchAbsent: with none of the default names present the
// search loads nothing and says what it tried and what to install.
func TestDefaultSearchAbsent(t *testing.T) {
	if nosysblas {
		t.Skip("built with -tags nosysblas: no search")
	}
	saved := defaultNames
	defer func() { defaultNames = saved }()
	defaultNames = []string{"libdsx-no-such-blas.so.0"}
	l, in := load("", "")
	if l != nil || !strings.Contains(in.Reason, "libdsx-no-such-blas.so.0") || !strings.Contains(in.Reason, installHint) {
		t.Errorf("loaded %v, reason %q", l != nil, in.Reason)
	}
}

// TestDefaultLoadInfo: the default library says what it is and where it
// came from, and is single-threaded when it can be.
func TestDefaultLoadInfo(t *testing.T) {
	in := lib(t).Info()
	t.Logf("%+v", in)
	if in.Name == "" || in.Path == "" {
		t.Errorf("name %q, path %q", in.Name, in.Path)
	}
	if strings.HasPrefix(in.Name, "OpenBLAS") && in.Threads != 1 {
		t.Errorf("OpenBLAS with %d threads per call, want 1", in.Threads)
	}
	if in.Generic != (in.Warning != "") {
		t.Errorf("generic %v, warning %q: generic kernels are what the warning is about", in.Generic, in.Warning)
	}
}

// TestInstallHint: where the default search finds nothing, Info says how to
// install the platform's usual library.
func TestInstallHint(t *testing.T) {
	if nosysblas {
		t.Skip("built with -tags nosysblas: no search")
	}
	saved := defaultNames
	defer func() { defaultNames = saved }()
	defaultNames = []string{"libdsx-no-such-blas.so.0"}
	if _, in := load("", ""); in.Install == "" || in.Install != installCommand() {
		t.Errorf("install %q, want %q", in.Install, installCommand())
	}
	if _, in := load("off", ""); in.Install != "" {
		t.Errorf("DSX_BLAS=off: install %q, want none (the user chose no BLAS)", in.Install)
	}
}
