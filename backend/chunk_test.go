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

// cpuLike and cudaLike are declarations like the two backends'.
var (
	cpuLike  = backend.Capabilities{DTypes: []tensor.Dtype{tensor.Float32, tensor.Float64}, Xents: map[backend.XentImpl]backend.XentCaps{backend.Fused: {Loss: backend.AllLoss}}, Chunks: true}
	cudaLike = backend.Capabilities{DTypes: []tensor.Dtype{tensor.Float32, tensor.Float64}, MatModes: []backend.MatMode{backend.TF32, backend.BF16},
		Storages: []backend.Storage{backend.StorageBF16}, Chunks: true,
		Xents: map[backend.XentImpl]backend.XentCaps{backend.Fused: {Loss: backend.AllLoss, VocabTiles: true}, backend.Unfused: {Loss: backend.LossCaps{ClassWeights: true, IgnoreIndex: true}}}}
)

// TestCheckStorage: bfloat16 storage is refused by a backend that does not
// declare it (backend.ErrNotImplemented), by a float64 layer, and with TF32 products.
func TestCheckStorage(t *testing.T) {
	cfg := backend.Config{Spec: graph.Spec{B: 2, N: 3, T: 4, DType: tensor.Float32}, Storage: backend.StorageBF16}
	if err := cpuLike.Check("cpu", cfg); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("a backend without bfloat16 storage: %v", err)
	}
	if err := cudaLike.Check("cuda", cfg); err != nil {
		t.Errorf("a backend with it: %v", err)
	}
	c64 := cfg
	c64.DType = tensor.Float64
	if err := cudaLike.Check("cuda", c64); err == nil {
		t.Error("float64 with bfloat16 storage: no error")
	}
	tf := cfg
	tf.MatMode = backend.TF32
	if err := cudaLike.Check("cuda", tf); err == nil {
		t.Error("TF32 with bfloat16 storage: no error")
	}
	bad := cfg
	bad.Storage = 7
	if err := cudaLike.Check("cuda", bad); err == nil || !strings.Contains(err.Error(), "Storage(7)") {
		t.Errorf("storage 7: %v", err)
	}
}

// TestCheckVocabTile: vocabulary tiles need a backend that runs them and the
// fused loss; a tile of T or more is whole rows, which every backend runs.
func TestCheckVocabTile(t *testing.T) {
	cfg := backend.Config{Spec: graph.Spec{B: 2, N: 3, T: 10, DType: tensor.Float32}, VocabTile: 4}
	if err := cpuLike.Check("cpu", cfg); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("tiles on a backend without them: %v", err)
	}
	whole := cfg
	whole.VocabTile = 10
	if err := cpuLike.Check("cpu", whole); err != nil {
		t.Errorf("a tile of T: %v", err)
	}
	if err := cudaLike.Check("cuda", cfg); err != nil {
		t.Errorf("tiles on a backend with them: %v", err)
	}
	un := cfg
	un.Xent = backend.Unfused
	if err := cudaLike.Check("cuda", un); !errors.Is(err, backend.ErrNotImplemented) {
		t.Errorf("tiles with the unfused loss: %v", err)
	}
	neg := cfg
	neg.VocabTile = -1
	if err := cudaLike.Check("cuda", neg); err == nil {
		t.Error("tile -1: no error")
	}
}

// TestCheckDeclared: Check refuses with ErrNotImplemented each thing a
// declaration leaves out (a dtype, a mode, an implementation, each loss
// option, chunking) and accepts it once declared.
func TestCheckDeclared(t *testing.T) {
	base := backend.Config{Spec: graph.Spec{B: 2, N: 3, T: 4, DType: tensor.Float32}}
	none := backend.Capabilities{DTypes: []tensor.Dtype{tensor.Float32}, Xents: map[backend.XentImpl]backend.XentCaps{backend.Fused: {}}}
	if err := none.Check("x", base); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for name, c := range map[string]func(*backend.Config){
		"float64":      func(c *backend.Config) { c.DType = tensor.Float64 },
		"tf32":         func(c *backend.Config) { c.MatMode = backend.TF32 },
		"unfused":      func(c *backend.Config) { c.Xent = backend.Unfused },
		"soft":         func(c *backend.Config) { c.Loss.SoftTargets = true },
		"smoothing":    func(c *backend.Config) { c.Loss.LabelSmoothing = 0.1 },
		"weights":      func(c *backend.Config) { c.Loss.ClassWeights = []float64{1, 1, 1, 1} },
		"ignore":       func(c *backend.Config) { c.Loss.UseIgnoreIndex = true },
		"softcap":      func(c *backend.Config) { c.Loss.Softcap = 3 },
		"zloss":        func(c *backend.Config) { c.Loss.ZLoss = 1e-4 },
		"chunks":       func(c *backend.Config) { c.ChunkRows = 1 },
		"float64+bf16": func(c *backend.Config) { c.DType, c.MatMode = tensor.Float64, backend.BF16 },
	} {
		cfg := base
		c(&cfg)
		if err := none.Check("x", cfg); !errors.Is(err, backend.ErrNotImplemented) {
			t.Errorf("%s, undeclared: %v, want ErrNotImplemented", name, err)
		}
		if err := cudaLike.Check("cuda", cfg); err != nil && name != "float64+bf16" {
			t.Errorf("%s, declared: %v", name, err)
		}
	}
}
