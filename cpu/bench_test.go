package cpu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// stepFixture opens a float32 layer with SGD and a fixed random batch, as
// `dsx bench` does.
func stepFixture(tb testing.TB, B, N, T int) (backend.Layer, *tensor.Dense, *tensor.Dense) {
	return stepFixtureChunk(tb, B, N, T, 0)
}

// stepFixtureChunk is stepFixture with Config.ChunkRows = chunk.
func stepFixtureChunk(tb testing.TB, B, N, T, chunk int) (backend.Layer, *tensor.Dense, *tensor.Dense) {
	return stepFixtureWant(tb, B, N, T, chunk, graph.Want{DW: true, DB: true})
}

// stepFixtureDX is stepFixture with dx computed too.
func stepFixtureDX(tb testing.TB, B, N, T int) (backend.Layer, *tensor.Dense, *tensor.Dense) {
	return stepFixtureWant(tb, B, N, T, 0, graph.Want{DW: true, DB: true, DX: true})
}

func stepFixtureWant(tb testing.TB, B, N, T, chunk int, want graph.Want) (backend.Layer, *tensor.Dense, *tensor.Dense) {
	tb.Helper()
	l, err := Backend{}.Open(backend.Config{
		Spec:      graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: want},
		Optimizer: backend.Optimizer{Kind: backend.SGD, LR: 1e-3},
		ChunkRows: chunk,
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

// BenchmarkNarrow times one step at T = 10, where the products are narrow
// (T ≤ narrowN), with and without dx, on the narrow kernels ("narrow": the
// FMA assembly where the CPU has it, else gonum's dot and axpy) and on the
// system's BLAS ("blas").
func BenchmarkNarrow(b *testing.B) {
	if !BLAS().Loaded {
		b.Skipf("no BLAS loaded: %s", BLAS().Reason)
	}
	for _, s := range benchShapes[:2] {
		for _, dx := range []bool{false, true} {
			for _, onBLAS := range []bool{true, false} {
				name := "narrow"
				if onBLAS {
					name = "blas"
				}
				b.Run(fmt.Sprintf("B=%d,N=%d,T=%d,dx=%v/%s", s.B, s.N, s.T, dx, name), func(b *testing.B) {
					forceGeneralGEMM, narrowGo = onBLAS, !onBLAS
					defer func() { forceGeneralGEMM, narrowGo = false, false }()
					l, x, y := stepFixtureWant(b, s.B, s.N, s.T, 0, graph.Want{DW: true, DB: true, DX: dx})
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
}

// BenchmarkChunkRows times one step (as BenchmarkStep) at chunk sizes
// around the default rule's choice (chunkRows), -1 the whole batch: the
// measurements the rule is checked against (bench/RESULTS.md).
// DSX_CHUNK_SHAPES (BxNxT,...) and DSX_CHUNK_ROWS (r,...) replace the
// shapes and sizes.
func BenchmarkChunkRows(b *testing.B) {
	shapes := []struct{ B, N, T int }{{4096, 784, 10}, {4096, 1024, 1000}, {4096, 1024, 10000}}
	rows := []int{0, 64, 128, 256, 512, 1024, 2048, -1}
	if s := os.Getenv("DSX_CHUNK_SHAPES"); s != "" {
		shapes = shapes[:0]
		for _, f := range strings.Split(s, ",") {
			var B, N, T int
			if _, err := fmt.Sscanf(f, "%dx%dx%d", &B, &N, &T); err != nil {
				b.Fatalf("DSX_CHUNK_SHAPES: %v", err)
			}
			shapes = append(shapes, struct{ B, N, T int }{B, N, T})
		}
	}
	if s := os.Getenv("DSX_CHUNK_ROWS"); s != "" {
		rows = rows[:0]
		for _, f := range strings.Split(s, ",") {
			r, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("DSX_CHUNK_ROWS: %v", err)
			}
			rows = append(rows, r)
		}
	}
	for _, s := range shapes {
		for _, r := range rows {
			b.Run(fmt.Sprintf("B=%d,N=%d,T=%d/rows=%d", s.B, s.N, s.T, r), func(b *testing.B) {
				l, x, y := stepFixtureChunk(b, s.B, s.N, s.T, r)
				defer l.Close()
				b.ReportMetric(float64(l.(*layer).chunk.Rows), "chunk")
				for i := 0; i < 2; i++ {
					if _, err := l.Step(x, y); err != nil {
						b.Fatal(err)
					}
				}
				c0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := l.Step(x, y); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time moves less than wall time on a busy machine.
				b.ReportMetric((cpuTime()-c0).Seconds()*1e3/float64(b.N), "cpu-ms/op")
				b.ReportMetric(4*float64(s.B)*float64(s.N)*float64(s.T)/(float64(b.Elapsed().Nanoseconds())/float64(b.N)), "GFLOP/s")
			})
		}
	}
}
