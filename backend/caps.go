package backend

import (
	"fmt"
	"slices"
	"strings"

	"dsx/graph"

	"gorgonia.org/tensor"
)

// Capabilities is what a backend declares it runs (Backend.Capabilities),
// so that a caller learns what is supported without trying: Open refuses
// anything else with an error wrapping ErrNotImplemented (Check), the
// conformance suite runs what is declared and asserts that Open refuses the
// rest, and dsx bench times the declared variants and modes. The defaults
// (FP32, Fused, StorageF32, whole batches) need not be listed: every backend
// runs them, and Check does not look for them.
type Capabilities struct {
	// DTypes are the layer dtypes (tensor.Float32, tensor.Float64).
	DTypes []tensor.Dtype
	// MatModes are the product modes beyond FP32 (float32 layers only).
	MatModes []MatMode
	// Storages are the storages beyond StorageF32 (float32 layers only).
	Storages []Storage
	// Xents are the softmax-cross-entropy implementations, each with what it
	// runs. Fused must be there.
	Xents map[XentImpl]XentCaps
	// Chunks: batches run in chunks of rows (Config.ChunkRows > 0, or an
	// automatic chunk under Config.MemoryBudget).
	Chunks bool
	// FusedName, when set, is what listings (dsx bench's variants) call the
	// Fused implementation: "graph" on the CPU, which runs the layer graph
	// itself on Gorgonia's VM (its softmax-cross-entropy is the graph's
	// fused op).
	FusedName string
	// DataParallel: the layer steps as one rank of a data-parallel job
	// (Config.Comm of more than one rank).
	DataParallel bool
}

// XentCaps is what one softmax-cross-entropy implementation runs.
type XentCaps struct {
	Loss LossCaps
	// VocabTiles: Config.VocabTile < T (the logits one tile of classes at a
	// time).
	VocabTiles bool
}

// LossCaps are the options of graph.LossOptions an implementation takes.
// Every implementation takes hard targets and the three reductions.
type LossCaps struct {
	SoftTargets    bool // LossOptions.SoftTargets
	LabelSmoothing bool // LossOptions.LabelSmoothing ≠ 0
	ClassWeights   bool // LossOptions.ClassWeights ≠ nil
	IgnoreIndex    bool // LossOptions.UseIgnoreIndex
	Softcap        bool // LossOptions.Softcap ≠ 0
	ZLoss          bool // LossOptions.ZLoss ≠ 0
}

// AllLoss is every loss option.
var AllLoss = LossCaps{SoftTargets: true, LabelSmoothing: true, ClassWeights: true, IgnoreIndex: true, Softcap: true, ZLoss: true}

// Missing names the options of o that c does not take, "" when it takes
// them all.
func (c LossCaps) Missing(o graph.LossOptions) string {
	var out []string
	for _, f := range []struct {
		used, have bool
		name       string
	}{
		{o.SoftTargets, c.SoftTargets, "probability targets"},
		{o.LabelSmoothing != 0, c.LabelSmoothing, "label smoothing"},
		{o.ClassWeights != nil, c.ClassWeights, "class weights"},
		{o.UseIgnoreIndex, c.IgnoreIndex, "an ignore index"},
		{o.Softcap != 0, c.Softcap, "soft-capping"},
		{o.ZLoss != 0, c.ZLoss, "z-loss"},
	} {
		if f.used && !f.have {
			out = append(out, f.name)
		}
	}
	return strings.Join(out, ", ")
}

// HasDType, HasMatMode, HasStorage and HasXent report whether c declares a
// value (the defaults FP32, StorageF32 and Fused always).
func (c Capabilities) HasDType(dt tensor.Dtype) bool { return slices.Contains(c.DTypes, dt) }
func (c Capabilities) HasMatMode(m MatMode) bool     { return m == FP32 || slices.Contains(c.MatModes, m) }
func (c Capabilities) HasStorage(s Storage) bool {
	return s == StorageF32 || slices.Contains(c.Storages, s)
}
func (c Capabilities) HasXent(x XentImpl) bool {
	_, ok := c.Xents[x]
	return ok
}

// MatModes, XentImpls and Storages list every value of each, in order
// (the default first), whatever a backend declares.
func MatModes() []MatMode   { return values[MatMode](int(matModeEnd)) }
func XentImpls() []XentImpl { return values[XentImpl](int(xentEnd)) }
func Storages() []Storage   { return values[Storage](int(storageEnd)) }
func values[E ~int](n int) []E {
	out := make([]E, n)
	for i := range out {
		out[i] = E(i)
	}
	return out
}

// Check returns nil when the backend named name runs cfg by its
// declaration; an error wrapping ErrNotImplemented that names what it does
// not run (a dtype, matmul mode, storage, softmax-cross-entropy
// implementation, loss option, chunking or vocabulary tiles); and a plain
// error for values that mean nothing (an unknown mode, a negative tile,
// chunk rows below -1, a negative memory budget, bfloat16 storage with
// TF32 products). cfg.Spec is not validated here.
func (c Capabilities) Check(name string, cfg Config) error {
	notImpl := func(format string, a ...any) error {
		return fmt.Errorf("%s: %s: %w", name, fmt.Sprintf(format, a...), ErrNotImplemented)
	}
	switch {
	case !valid(matModeNames[:], cfg.MatMode):
		return fmt.Errorf("%s: matmul mode %v: want %s", name, cfg.MatMode, strings.Join(matModeNames[:], ", "))
	case !valid(xentNames[:], cfg.Xent):
		return fmt.Errorf("%s: softmax-cross-entropy %v: want %s", name, cfg.Xent, strings.Join(xentNames[:], ", "))
	case !valid(storageNames[:], cfg.Storage):
		return fmt.Errorf("%s: storage %v: want %s", name, cfg.Storage, strings.Join(storageNames[:], ", "))
	case cfg.VocabTile < 0:
		return fmt.Errorf("%s: vocabulary tile %d: want > 0 classes, or 0 for whole rows", name, cfg.VocabTile)
	case cfg.ChunkRows < -1:
		return fmt.Errorf("%s: chunk rows %d: want > 0 rows, 0 for automatic, or -1 for whole batches", name, cfg.ChunkRows)
	case cfg.MemoryBudget < 0:
		return fmt.Errorf("%s: memory budget %d bytes: want > 0, or 0 for the default %d", name, cfg.MemoryBudget, int64(DefaultMemoryBudget))
	case cfg.Storage == StorageBF16 && cfg.MatMode == TF32:
		return fmt.Errorf("%s: bfloat16 storage multiplies bfloat16 operands; matmul mode %v does not go with it", name, cfg.MatMode)
	}
	if !c.HasDType(cfg.DType) {
		return notImpl("%v layers", cfg.DType)
	}
	if !c.HasMatMode(cfg.MatMode) {
		return notImpl("matmul mode %v", cfg.MatMode)
	}
	if cfg.MatMode != FP32 && cfg.DType != tensor.Float32 {
		return notImpl("matmul mode %v needs a float32 layer, not %v", cfg.MatMode, cfg.DType)
	}
	if !c.HasStorage(cfg.Storage) {
		return notImpl("%v storage", cfg.Storage)
	}
	if cfg.Storage != StorageF32 && cfg.DType != tensor.Float32 {
		return notImpl("%v storage needs a float32 layer, not %v", cfg.Storage, cfg.DType)
	}
	x, ok := c.Xents[cfg.Xent]
	if !ok {
		return notImpl("%v softmax-cross-entropy", cfg.Xent)
	}
	if m := x.Loss.Missing(cfg.Loss); m != "" {
		return notImpl("%v softmax-cross-entropy with %s", cfg.Xent, m)
	}
	if cfg.ChunkRows > 0 && !c.Chunks {
		return notImpl("chunked batches")
	}
	if cfg.Comm != nil && cfg.Comm.Size() > 1 && !c.DataParallel {
		return notImpl("data-parallel steps (a communicator of %d ranks)", cfg.Comm.Size())
	}
	if cfg.VocabTile > 0 && cfg.VocabTile < cfg.T && !x.VocabTiles {
		return notImpl("vocabulary tiles with the %v softmax-cross-entropy", cfg.Xent)
	}
	return nil
}
