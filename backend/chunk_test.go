package backend_test

import (
	"errors"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestChunkAuto: Config.Chunk picks whole batches under the budget and
// multiples of 256 rows over it.
func TestChunkAuto(t *testing.T) {
	c := backend.Config{Spec: graph.Spec{B: 8192, N: 4096, T: 128256}}
	if got := c.Chunk(4); got != 2048 {
		t.Errorf("auto chunk %d, want 2048", got)
	}
	c.ChunkRows = -1
	if got := c.Chunk(4); got != 8192 {
		t.Errorf("never: %d", got)
	}
	c.ChunkRows = 100
	if got := c.Chunk(4); got != 100 {
		t.Errorf("ChunkRows 100: %d", got)
	}
}

// TestCheckStorage: bfloat16 storage is refused by a backend that does not
// list it (backend.ErrNotImplemented), by a float64 layer, and with TF32 products.
func TestCheckStorage(t *testing.T) {
	cfg := backend.Config{Spec: graph.Spec{B: 2, N: 3, T: 4, DType: tensor.Float32}, Storage: "bf16"}
	if err := backend.CheckOptions(cfg, "cpu", []string{"fp32"}, []string{"fused"}, true); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("a backend without bfloat16 storage: %v", err)
	}
	if err := backend.CheckOptions(cfg, "cuda", []string{"fp32", "bf16"}, []string{"fused"}, true, "bf16"); err != nil {
		t.Errorf("a backend with it: %v", err)
	}
	c64 := cfg
	c64.DType = tensor.Float64
	if err := backend.CheckOptions(c64, "cuda", []string{"fp32"}, []string{"fused"}, true, "bf16"); err == nil {
		t.Error("float64 with bfloat16 storage: no error")
	}
	tf := cfg
	tf.MatMode = "tf32"
	if err := backend.CheckOptions(tf, "cuda", []string{"fp32", "tf32"}, []string{"fused"}, true, "bf16"); err == nil {
		t.Error("TF32 with bfloat16 storage: no error")
	}
	bad := cfg
	bad.Storage = "fp8"
	if err := backend.CheckOptions(bad, "cuda", []string{"fp32"}, []string{"fused"}, true, "bf16"); err == nil || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("storage fp8: %v", err)
	}
}
