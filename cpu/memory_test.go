package cpu

import (
	"errors"
	"runtime"
	"testing"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestOpenOutOfMemory: a layer far larger than the host is refused with
// ErrOutOfMemory before anything of its size is allocated.
func TestOpenOutOfMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, cfg := range []backend.Config{
		{Spec: graph.Spec{B: 1, N: 1 << 24, T: 1 << 22, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}},
		// 2³¹ classes, as a label near 2³¹ once asked for: 6.7 TB of W.
		{Spec: graph.Spec{B: 256, N: 784, T: 1 << 31, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true}}, Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1e-3}},
	} {
		_, err := Backend{}.Open(cfg)
		if !errors.Is(err, backend.ErrOutOfMemory) {
			t.Errorf("Open %d×%d×%d: %v, want ErrOutOfMemory", cfg.B, cfg.N, cfg.T, err)
		} else {
			t.Log(err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("refused Opens allocated %d bytes", d)
	}
}

// TestFootprintHeld: what a layer holds after Open and a first Step — the
// Go heap's growth, garbage collected — is what kit.FootprintRows
// counts for its chunks (state and extra, and dx), within 5 % plus 1 MiB
// (Go's size classes and span rounding, the graph built for one row, tensor
// headers); unchunked and chunked, with and without dx.
func TestFootprintHeld(t *testing.T) {
	const B, N, T = 1024, 128, 3000
	for _, c := range []struct {
		chunk int
		dx    bool
	}{{-1, false}, {128, false}, {100, true}} {
		cfg := backend.Config{Spec: graph.Spec{B: B, N: N, T: T, DType: tensor.Float32, Want: graph.Want{DW: true, DB: true, DX: c.dx}},
			Optimizer: backend.Optimizer{Kind: backend.Adam, LR: 1e-3}, ChunkRows: c.chunk}
		x := tensor.New(tensor.WithShape(B, N), tensor.WithBacking(make([]float32, B*N)))
		y := tensor.New(tensor.WithShape(B), tensor.WithBacking(make([]float32, B)))
		held := func() uint64 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := held()
		l, err := Backend{}.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Step(x, y); err != nil {
			t.Fatal(err)
		}
		got := int64(held() - before)
		m := l.(kit.Stats).MemStats()
		want := m.StateBytes + m.ExtraBytes
		if c.dx {
			want += 4 * B * N
		}
		t.Logf("chunk %d, dx %v: heap grew %.2f MiB, footprint %.2f MiB (%d rows a chunk)", c.chunk, c.dx, float64(got)/(1<<20), float64(want)/(1<<20), m.ChunkRows)
		if d := got - want; d > want/20+1<<20 || -d > want/20+1<<20 {
			t.Errorf("chunk %d, dx %v: the layer holds %d bytes, FootprintRows counts %d", c.chunk, c.dx, got, want)
		}
		runtime.KeepAlive(l)
		l.Close()
	}
}
