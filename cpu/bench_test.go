package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// stepFixture opens a float32 layer with SGD and a fixed random batch, as
// `dsx bench` does.
func stepFixture(tb testing.TB, B, N, T int) (backend.Layer, *tensor.Dense, *tensor.Dense) {
	tb.Helper()
	l, err := Backend{}.Open(backend.Config{
		Spec:      graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}},
		Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 1e-3},
	})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, uint64(B*N*T)))
	x := make([]float32, B*N)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]float32, B)
	for i := range y {
		y[i] = float32(rng.IntN(T))
	}
	w := make([]float32, N*T)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.01)
	}
	if err := l.SetParams(tensor.New(tensor.WithShape(N, T), tensor.WithBacking(w)),
		tensor.New(tensor.WithShape(T), tensor.Of(tensor.Float32))); err != nil {
		tb.Fatal(err)
	}
	return l, tensor.New(tensor.WithShape(B, N), tensor.WithBacking(x)), tensor.New(tensor.WithShape(B), tensor.WithBacking(y))
}

var benchShapes = []struct{ B, N, T int }{{4096, 784, 10}, {1024, 784, 10}, {4096, 1024, 1000}}

// BenchmarkStep times one training step (forward, backward for W and b, SGD).
func BenchmarkStep(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("B=%d,N=%d,T=%d", s.B, s.N, s.T), func(b *testing.B) {
			l, x, y := stepFixture(b, s.B, s.N, s.T)
			defer l.Close()
			for i := 0; i < 3; i++ {
				if _, err := l.Step(x, y); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Step(x, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNarrow times one step at T = 10, where both products are narrow
// (T ≤ narrowN), with them on the system's BLAS and on the Go dot/axpy
// kernels.
func BenchmarkNarrow(b *testing.B) {
	if !BLAS().Loaded {
		b.Skipf("no BLAS loaded: %s", BLAS().Reason)
	}
	for _, s := range benchShapes[:2] {
		for _, goKernels := range []bool{false, true} {
			name := "blas"
			if goKernels {
				name = "go"
			}
			b.Run(fmt.Sprintf("B=%d,N=%d,T=%d/%s", s.B, s.N, s.T, name), func(b *testing.B) {
				narrowGo = goKernels
				defer func() { narrowGo = false }()
				l, x, y := stepFixture(b, s.B, s.N, s.T)
				defer l.Close()
				for i := 0; i < 10; i++ {
					if _, err := l.Step(x, y); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := l.Step(x, y); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
