package backend

import (
	"fmt"
	"strings"
)

// MatMode is how a float32 layer's matrix products multiply. Products
// accumulate in float32 in every mode, and the loss, softmax and optimizer
// stay in float32. Modes other than FP32 need a float32 layer.
type MatMode int

const (
	FP32 MatMode = iota // full float32 (a float64 layer multiplies in float64)
	TF32                // on TF32 tensor cores: operands rounded to a 10-bit mantissa
	BF16                // on bfloat16 copies of the operands
	matModeEnd
)

var matModeNames = [matModeEnd]string{FP32: "fp32", TF32: "tf32", BF16: "bf16"}

func (m MatMode) String() string { return nameOf(matModeNames[:], m, "MatMode") }

// ParseMatMode reads "fp32", "tf32" or "bf16"; "" is FP32.
func ParseMatMode(s string) (MatMode, error) {
	return parse[MatMode](matModeNames[:], s, "matmul mode")
}

// XentImpl is how softmax + cross-entropy run.
type XentImpl int

const (
	// Fused: one kernel that computes the loss and writes the gradient over
	// the logits.
	Fused XentImpl = iota
	// Unfused: as PyTorch eager runs it: log-softmax to a second rows×T
	// buffer, the loss from it, then the gradient as a separate kernel.
	Unfused
	xentEnd
)

var xentNames = [xentEnd]string{Fused: "fused", Unfused: "unfused"}

func (x XentImpl) String() string { return nameOf(xentNames[:], x, "XentImpl") }

// ParseXentImpl reads "fused" or "unfused"; "" is Fused.
func ParseXentImpl(s string) (XentImpl, error) {
	return parse[XentImpl](xentNames[:], s, "softmax-cross-entropy")
}

// Storage is how a float32 layer keeps x, dx and the products' operands on
// its device (see Config.Storage).
type Storage int

const (
	StorageF32  Storage = iota // everything in the layer's dtype
	StorageBF16                // mixed precision: x, dx and W's copy in bfloat16
	storageEnd
)

var storageNames = [storageEnd]string{StorageF32: "fp32", StorageBF16: "bf16"}

func (s Storage) String() string { return nameOf(storageNames[:], s, "Storage") }

// ParseStorage reads "fp32" or "bf16"; "" is StorageF32.
func ParseStorage(s string) (Storage, error) { return parse[Storage](storageNames[:], s, "storage") }

// OptimizerKind is the update Layer.Step applies (see Optimizer).
type OptimizerKind int

const (
	NoOptimizer OptimizerKind = iota // Step is an error
	SGD                              // with momentum and weight decay
	Adam                             // Adam, or AdamW with Optimizer.Decoupled
	optimizerEnd
)

var optimizerNames = [optimizerEnd]string{NoOptimizer: "none", SGD: "sgd", Adam: "adam"}

func (k OptimizerKind) String() string { return nameOf(optimizerNames[:], k, "OptimizerKind") }

// ParseOptimizerKind reads "sgd", "adam" or "none"; "" is NoOptimizer.
func ParseOptimizerKind(s string) (OptimizerKind, error) {
	return parse[OptimizerKind](optimizerNames[:], s, "optimizer")
}

// nameOf is v's name, or Type(v) for a value that has none.
func nameOf[E ~int](names []string, v E, typ string) string {
	if v >= 0 && int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, int(v))
}

// valid reports whether v is one of the named values.
func valid[E ~int](names []string, v E) bool { return v >= 0 && int(v) < len(names) }

// parse returns the value named s (case-insensitive), the zero value for "",
// and otherwise an error that lists the names.
func parse[E ~int](names []string, s, what string) (E, error) {
	if s == "" {
		return 0, nil
	}
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return E(i), nil
		}
	}
	return 0, fmt.Errorf("%s %q: want %s", what, s, strings.Join(names, ", "))
}
