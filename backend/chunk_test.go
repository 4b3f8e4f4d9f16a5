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
	cuda := backend.Support{Modes: []string{"fp32", "tf32", "bf16"}, Xents: []string{"fused"}, Storages: []string{"bf16"}, Chunks: true, VocabTiles: true}
	if err := backend.CheckOptions(cfg, "cpu", backend.Support{Modes: []string{"fp32"}, Xents: []string{"fused"}, Chunks: true}); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("a backend without bfloat16 storage: %v", err)
	}
	if err := backend.CheckOptions(cfg, "cuda", cuda); err != nil {
		t.Errorf("a backend with it: %v", err)
	}
	c64 := cfg
	c64.DType = tensor.Float64
	if err := backend.CheckOptions(c64, "cuda", cuda); err == nil {
		t.Error("float64 with bfloat16 storage: no error")
	}
	tf := cfg
	tf.MatMode = "tf32"
	if err := backend.CheckOptions(tf, "cuda", cuda); err == nil {
		t.Error("TF32 with bfloat16 storage: no error")
	}
	bad := cfg
	bad.Storage = "fp8"
	if err := backend.CheckOptions(bad, "cuda", cuda); err == nil || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("storage fp8: %v", err)
	}
}

// TestCheckVocabTile: vocabulary tiles need a backend that runs them and the
// fused loss; a tile of T or more is whole rows, which every backend runs.
func TestCheckVocabTile(t *testing.T) {
	cfg := backend.Config{Spec: graph.Spec{B: 2, N: 3, T: 10, DType: tensor.Float32}, VocabTile: 4}
	cpu := backend.Support{Modes: []string{"fp32"}, Xents: []string{"fused"}, Chunks: true}
	if err := backend.CheckOptions(cfg, "cpu", cpu); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("tiles on a backend without them: %v", err)
	}
	whole := cfg
	whole.VocabTile = 10
	if err := backend.CheckOptions(whole, "cpu", cpu); err != nil {
		t.Errorf("a tile of T: %v", err)
	}
	gpu := backend.Support{Modes: []string{"fp32"}, Xents: []string{"fused", "unfused"}, Chunks: true, VocabTiles: true}
	if err := backend.CheckOptions(cfg, "cuda", gpu); err != nil {
		t.Errorf("tiles on a backend with them: %v", err)
	}
	un := cfg
	un.Xent = "unfused"
	if err := backend.CheckOptions(un, "cuda", gpu); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("tiles with the unfused loss: %v", err)
	}
	neg := cfg
	neg.VocabTile = -1
	if err := backend.CheckOptions(neg, "cuda", gpu); err == nil {
		t.Error("tile -1: no error")
	}
}
