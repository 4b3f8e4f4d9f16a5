package kit

import (
	"dsx/backend"
	"errors"
	"math"
	"strings"
	"testing"

	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestFootprint: the estimate of a small layer, category by category,
// worked out by hand from the documented formula (the per-row statistics
// are 16 bytes a row, the chunk's column sums T values).
func TestFootprint(t *testing.T) {
	const B, N, T = 8, 3, 5
	for _, c := range []struct {
		name               string
		cfg                backend.Config
		state, input, xtra int64
	}{
		{"float32, dW db, no optimizer",
			backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}},
			4 * (N*T + T + N*T + T), 4 * (B*N + B), 4*2*B*T + 16*B + 4*T},
		{"float64, adam, dx, soft targets",
			backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float64, Want: graph.Want{DW: true, DB: true, DX: true}, Loss: graph.LossOptions{SoftTargets: true}},
				Optimizer: backend.Optimizer{Kind: backend.Adam}},
			8 * (3*(N*T+T) + N*T + T), 8 * (B*N + B*T + B*N), 8*2*B*T + 16*B + 8*T},
		{"float32, sgd momentum, chunks of 2 rows, bf16",
			backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32}, Optimizer: backend.Optimizer{Kind: backend.SGD, Momentum: 0.9}, ChunkRows: 2, MatMode: backend.BF16},
			4 * 2 * (N*T + T), 4 * (B*N + B), 4*2*2*T + 16*2 + 4*T + 2*(2*N+N*T+2*T)},
		{"float32, Reduction None, z-loss, chunks of 3 rows",
			backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Loss: graph.LossOptions{Reduction: graph.None, ZLoss: 1e-4}}, ChunkRows: 3},
			4 * (N*T + T), 4 * (B*N + B), 4*2*3*T + 24*3 + 4*T + 4*(B+3)},
	} {
		m, err := Footprint(c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.StateBytes != c.state || m.InputBytes != c.input || m.ExtraBytes != c.xtra {
			t.Errorf("%s: state %d, input %d, extra %d; want %d, %d, %d", c.name, m.StateBytes, m.InputBytes, m.ExtraBytes, c.state, c.input, c.xtra)
		}
	}
}

// TestFootprintOverflow: shapes whose every matrix fits (graph.Spec accepts
// them) but whose sum of buffers does not fit int64 are an error, not a
// wrapped-around small number.
func TestFootprintOverflow(t *testing.T) {
	n := 1<<30 - 1 // N×T just below graph.MaxElements = 2⁶⁰ − 1
	cfg := backend.Config{Spec: graph.Spec{B: 1, N: n, T: n, DType: tensor.Float64, Want: graph.Want{DW: true, DB: true}}, Optimizer: backend.Optimizer{Kind: backend.Adam}}
	if err := cfg.Spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Footprint(cfg); !errors.Is(err, backend.ErrOutOfMemory) || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("Footprint of %d×%d with Adam: %v, want an overflow wrapping backend.ErrOutOfMemory", n, n, err)
	}
}

func TestSizer(t *testing.T) {
	var z Sizer
	if got := z.Add(z.Mul(3, 4, 5), 7); got != 67 || z.Err() != nil {
		t.Errorf("3·4·5 + 7 = %d (%v)", got, z.Err())
	}
	if got := z.Mul(1<<40, 1<<30); got != math.MaxInt64 || z.Err() == nil {
		t.Errorf("2⁴⁰·2³⁰ = %d with no overflow reported", got)
	}
	var a Sizer
	if got := a.Add(math.MaxInt64-1, 2); got != math.MaxInt64 || !errors.Is(a.Err(), backend.ErrOutOfMemory) {
		t.Errorf("MaxInt64−1 + 2 = %d, %v", got, a.Err())
	}
}

func TestMemAvailable(t *testing.T) {
	for _, c := range []struct {
		text string
		want int64
		ok   bool
	}{
		{"MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n", 20000000 * 1024, true},
		{"MemTotal:       24576000 kB\n", 0, false},
		{"MemAvailable:   lots kB\n", 0, false},
		{"MemAvailable:   99999999999999999 kB\n", 0, false}, // ×1024 overflows
		{"MemAvailable:   12 MB\n", 0, false},
	} {
		got, ok := memAvailable(strings.NewReader(c.text))
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %d, %v; want %d, %v", c.text, got, ok, c.want, c.ok)
		}
	}
	if avail, ok := HostAvailable(); ok && avail <= 0 {
		t.Errorf("HostAvailable = %d", avail)
	}
}

func TestCheckHostMemory(t *testing.T) {
	err := CheckHostMemory("layer", 1<<50)
	if !errors.Is(err, backend.ErrOutOfMemory) || !strings.Contains(err.Error(), "needs about 1.00 PiB") {
		t.Errorf("1 PiB: %v", err)
	}
	if err := CheckHostMemory("layer", 1<<10); err != nil {
		t.Errorf("1 KiB: %v", err)
	}
}

// TestCheckParamsNonFinite: SetParams' check names the first NaN or ±Inf.
func TestCheckParamsNonFinite(t *testing.T) {
	cfg := backend.Config{Spec: graph.Spec{B: 1, N: 2, T: 3, DType: tensor.Float64}}
	W := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{0, 1, 2, 3, math.Inf(1), math.NaN()}))
	b := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{0, 0, 0}))
	if err := CheckParams(cfg, W, b); !errors.Is(err, backend.ErrNonFinite) || !strings.Contains(err.Error(), "W[1, 1] is +Inf") {
		t.Errorf("W with +Inf at [1, 1]: %v", err)
	}
}
