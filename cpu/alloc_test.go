package cpu

import (
	"testing"

	"dsx/graph"

	"gorgonia.org/tensor"
)

// maxStepAllocs bounds the heap allocations of a warm Step. None of them is
// a B×T or N×T buffer: those are reused (the chunk loop's and the XentOp's
// buffers), and the chunk loop makes no tensor header per chunk (the chunk's
// targets are copied into a buffer of its own). Measured (go test -run
// Alloc -v ./cpu): 2 allocations a step with the system's OpenBLAS,
// however many chunks; with DSX_BLAS=off gonum's parallel GEMM adds its
// goroutines to each product: 2, 26, and 98 for the 4 chunks.
const maxStepAllocs = 150

func TestStepAllocs(t *testing.T) {
	for _, s := range []struct{ B, N, T, chunk int }{{256, 64, 10, 0}, {64, 32, 300, 0}, {256, 64, 300, 64}} {
		l, x, y := stepFixtureChunk(t, s.B, s.N, s.T, s.chunk)
		for i := 0; i < 3; i++ {
			if _, err := l.Step(x, y); err != nil {
				t.Fatal(err)
			}
		}
		n := testing.AllocsPerRun(20, func() {
			if _, err := l.Step(x, y); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("B×N×T = %d×%d×%d, chunk %d: %.0f allocations per warm Step", s.B, s.N, s.T, s.chunk, n)
		if n > maxStepAllocs {
			t.Errorf("B×N×T = %d×%d×%d, chunk %d: %.0f allocations per warm Step, want ≤ %d", s.B, s.N, s.T, s.chunk, n, maxStepAllocs)
		}
		l.Close()
	}
}

// TestRewind checks that the forward machines (Logits) reuse their
// registers between runs (the program counter was found) and that repeated
// runs on a rewound machine compute what a fresh layer computes.
func TestRewind(t *testing.T) {
	l, x, y := stepFixture(t, 32, 16, 7)
	defer l.Close()
	if _, err := l.Step(x, y); err != nil {
		t.Fatal(err)
	}
	z1, err := l.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	m := l.(*layer).fwd[32]
	if m == nil || m.pc == nil {
		t.Fatal("TapeMachine's program counter not found: every run reallocates its buffers")
	}
	z2, err := l.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(z1, z2) {
		t.Error("second run on the rewound machine differs")
	}
	// A fresh layer with the same parameters gives the same result.
	W, b, _ := l.Params()
	f, _, _ := stepFixture(t, 32, 16, 7)
	defer f.Close()
	if err := f.SetParams(W, b); err != nil {
		t.Fatal(err)
	}
	z3, err := f.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(z1, z3) {
		t.Error("rewound machine differs from a fresh one")
	}
	_ = graph.Mean
}

func equal(a, b *tensor.Dense) bool {
	x, y := a.Data().([]float32), b.Data().([]float32)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}
