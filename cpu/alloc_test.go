package cpu

import (
	"testing"

	"dsx/graph"

	"gorgonia.org/tensor"
)

// maxStepAllocs bounds the heap allocations of a warm Step. None of them is
// a B×T or N×T buffer: those are reused (see newMachine and the XentOp's
// buffers), and a warm step allocates about 4 KB in all. What remains is
// Gorgonia's and its tensor package's own bookkeeping, which dsx cannot
// reach without replacing the VM: RunAll makes two channels and a goroutine
// per run, each instruction (the two products, BiasAdd, the loss and its
// gradient, ColSum) an input slice, tensor headers and shape copies;
// gonum's parallel GEMM (DSX_BLAS=off, T > narrowN) adds its goroutines.
// Measured (go test -run Alloc -v ./cpu, GOMAXPROCS 1 to 16 alike): 63
// allocations per step at T = 10 and at T = 300 with the system's OpenBLAS;
// with DSX_BLAS=off 63 at T = 10 and 87 at T = 300.
const maxStepAllocs = 150

func TestStepAllocs(t *testing.T) {
	for _, s := range []struct{ B, N, T int }{{256, 64, 10}, {64, 32, 300}} {
		l, x, y := stepFixture(t, s.B, s.N, s.T)
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
		t.Logf("B×N×T = %d×%d×%d: %.0f allocations per warm Step", s.B, s.N, s.T, n)
		if n > maxStepAllocs {
			t.Errorf("B×N×T = %d×%d×%d: %.0f allocations per warm Step, want ≤ %d", s.B, s.N, s.T, n, maxStepAllocs)
		}
		l.Close()
	}
}

// TestRewind checks that the machines reuse their registers between runs
// (the program counter was found) and that repeated steps on a rewound
// machine compute what a fresh layer computes.
func TestRewind(t *testing.T) {
	l, x, y := stepFixture(t, 32, 16, 7)
	defer l.Close()
	if _, err := l.Step(x, y); err != nil {
		t.Fatal(err)
	}
	m := l.(*layer).train[32]
	if m.pc == nil {
		t.Fatal("TapeMachine's program counter not found: every run reallocates its buffers")
	}
	r1, err := l.Compute(x, y)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Compute(x, y)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Loss != r2.Loss || !equal(r1.DW, r2.DW) || !equal(r1.DB, r2.DB) {
		t.Errorf("second run on the rewound machine differs: loss %v vs %v", r1.Loss, r2.Loss)
	}
	// A fresh layer with the same parameters gives the same result.
	W, b, _ := l.Params()
	f, _, _ := stepFixture(t, 32, 16, 7)
	defer f.Close()
	if err := f.SetParams(W, b); err != nil {
		t.Fatal(err)
	}
	r3, err := f.Compute(x, y)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Loss != r3.Loss || !equal(r1.DW, r3.DW) || !equal(r1.DB, r3.DB) {
		t.Errorf("rewound machine differs from a fresh one: loss %v vs %v", r1.Loss, r3.Loss)
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
