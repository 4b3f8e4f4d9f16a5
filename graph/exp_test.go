package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dsx/internal/tol"
)

// TestExpSub32: the vector loop (AVX2 on amd64) gives the Go loop's terms
// and sum to the bit (the same float32 operations, the same eight-lane
// float64 summation), with and without an output slice, for every tail
// length, and for the edge values: −Inf (term 0), below −87.34 (0), 0 (1),
// NaN (propagates to the sum).
func TestExpSub32(t *testing.T) {
	if !useAVX2 {
		t.Logf("no vector loop on this CPU/platform: expSub32 is expSub32Go, compared with itself")
	}
	r := rand.New(rand.NewPCG(8, 9))
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 1000, 8003, 1030} {
		z := make([]float32, n)
		for i := range z {
			z[i] = float32(r.NormFloat64() * 30)
		}
		z[0] = float32(math.Inf(-1))
		if n > 9 {
			z[3], z[9] = -200, 40 // below the cut-off; equal to m
		}
		m := float32(40)
		ev, eg := make([]float32, n), make([]float32, n)
		sv, sg := expSub32(z, m, ev), expSub32Go(z, m, eg)
		for i := range eg {
			if math.Float32bits(ev[i]) != math.Float32bits(eg[i]) {
				t.Fatalf("n=%d: term %d (x=%v): vector %v, Go %v", n, i, z[i]-m, ev[i], eg[i])
			}
		}
		if sv != sg {
			t.Errorf("n=%d: sum vector %v, Go %v", n, sv, sg)
		}
		if s := expSub32(z, m, nil); s != sg {
			t.Errorf("n=%d, no output: sum %v, want %v", n, s, sg)
		}
		if eg[0] != 0 || (n > 9 && (eg[3] != 0 || eg[9] != 1)) {
			t.Errorf("n=%d: exp(−Inf) = %v, exp(−240) = %v, exp(0) = %v", n, eg[0], eg[min(3, n-1)], eg[min(9, n-1)])
		}
	}
	z := make([]float32, 19)
	z[11] = float32(math.NaN())
	for _, e := range [][]float32{make([]float32, 19), nil} {
		if s := expSub32(z, 0, e); !math.IsNaN(s) {
			t.Errorf("NaN in the row: sum %v, want NaN", s)
		}
	}
}

// TestExpSub32Accuracy: the row sum is within float32 rounding of the
// float64 sum of math.Exp (each term within tol.Exp32, see TestExpNonPos;
// the float64 summation adds nothing visible).
func TestExpSub32Accuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	z := make([]float32, 1000)
	for i := range z {
		z[i] = float32(r.NormFloat64() * 5)
	}
	m := float32(20)
	want := 0.0
	for _, v := range z {
		want += math.Exp(float64(v - m))
	}
	if got := expSub32(z, m, make([]float32, len(z))); tol.Close([]float64{got}, []float64{want}, tol.Exp32) != nil {
		t.Errorf("sum %v, float64 %v: relative error %.3g (%s)", got, want, math.Abs(got-want)/want, tol.Exp32.Why)
	}
}

// BenchmarkExpSub32 times one row of T terms (the softmax's inner loop).
func BenchmarkExpSub32(b *testing.B) {
	for _, T := range []int{10, 1000} {
		z, e := make([]float32, T), make([]float32, T)
		r := rand.New(rand.NewPCG(1, 1))
		for i := range z {
			z[i] = float32(r.NormFloat64())
		}
		for _, impl := range []struct {
			name string
			f    func([]float32, float32, []float32) float64
		}{{"vector", expSub32}, {"go", expSub32Go}} {
			b.Run(fmt.Sprintf("T=%d/%s", T, impl.name), func(b *testing.B) {
				b.SetBytes(int64(4 * T))
				for i := 0; i < b.N; i++ {
					impl.f(z, 4, e)
				}
			})
		}
	}
}
