package cpu

import (
	"errors"
	"runtime"
	"testing"

	"dsx/backend"
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
