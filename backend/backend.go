package backend

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"dsx/dist"
	"dsx/graph"

	"gorgonia.org/tensor"
)

var (
	// ErrUnavailable: the backend cannot run here (no device, no driver, not
	// compiled in). Errors wrap it with the reason.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrNotImplemented: the backend does not support this operation or
	// option; the caller may fall back. Errors wrap it with what is missing.
	ErrNotImplemented = errors.New("not implemented")
	// ErrOutOfMemory: the device (or, for the CPU, the host) has too little
	// memory for the request.
	ErrOutOfMemory = errors.New("out of memory")
	// ErrNonFinite: a batch's logits or loss are NaN or ±Inf (the error is a
	// *graph.NonFiniteError naming the row and what is to blame), or
	// parameters given to SetParams are.
	ErrNonFinite = graph.ErrNonFinite
)

// Optimizer configures the update applied by Layer.Step. The formulas are
// PyTorch's: for SGD, g += wd·w; v = momentum·v + g; w −= lr·v. For Adam,
// g += wd·w (or, with Decoupled, w −= lr·wd·w: AdamW); m and v with bias
// correction; w −= lr·m̂/(√v̂ + eps).
type Optimizer struct {
	Kind        OptimizerKind // NoOptimizer (the zero value): Step is an error
	LR          float64       // learning rate
	Momentum    float64       // SGD
	Beta1       float64       // Adam; 0 means 0.9
	Beta2       float64       // Adam; 0 means 0.999
	Eps         float64       // Adam; 0 means 1e-8
	WeightDecay float64
	Decoupled   bool // Adam only: AdamW's decoupled weight decay
}

// WithDefaults fills Adam's zero fields with PyTorch's defaults.
func (o Optimizer) WithDefaults() Optimizer {
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	return o
}

// Validate checks the optimizer settings.
func (o Optimizer) Validate() error {
	switch o.Kind {
	case SGD, Adam:
	case NoOptimizer:
		return nil
	default:
		return fmt.Errorf("optimizer %v: want sgd or adam", o.Kind)
	}
	for _, v := range []struct {
		name string
		x    float64
	}{{"learning rate", o.LR}, {"momentum", o.Momentum}, {"weight decay", o.WeightDecay}, {"beta1", o.Beta1}, {"beta2", o.Beta2}, {"eps", o.Eps}} {
		if math.IsNaN(v.x) || math.IsInf(v.x, 0) || v.x < 0 {
			return fmt.Errorf("optimizer: %s %v must be finite and ≥ 0", v.name, v.x)
		}
	}
	if o.Beta1 >= 1 || o.Beta2 >= 1 {
		return fmt.Errorf("optimizer: betas (%v, %v) must be < 1", o.Beta1, o.Beta2)
	}
	return nil
}

// Config describes a layer to open.
//
// The zero values of MatMode, Xent, Storage, ChunkRows, MemoryBudget and
// VocabTile are the defaults every backend supports. What else a backend
// runs it declares (Backend.Capabilities); Open refuses the rest with an
// error wrapping ErrNotImplemented (Capabilities.Check).
type Config struct {
	graph.Spec           // B is the largest batch; smaller batches are allowed
	Optimizer  Optimizer // for Step; Kind NoOptimizer (the zero value) means Step is an error

	// MatMode is how the matrix products multiply (float32 layers only):
	// FP32 in full float32; TF32 on TF32 tensor cores; BF16 with bfloat16
	// copies of the operands. Products accumulate in float32 in every mode,
	// and the loss, softmax and optimizer stay in float32.
	MatMode MatMode
	// Xent is how softmax + cross-entropy run: Fused, one kernel that writes
	// the gradient over the logits; Unfused, as PyTorch eager does
	// (log-softmax to a second rows×T buffer, the loss from it, then the
	// gradient as a separate kernel). Unfused supports hard targets without
	// label smoothing only.
	Xent XentImpl
	// ChunkRows bounds the rows whose logits exist at once: the batch runs in
	// chunks of that many rows (logits, fused gradient in place, dW and db
	// accumulated), so the B×T logits are never stored. 0: automatic, chunk
	// only when B×T logits would exceed MemoryBudget; -1: never chunk.
	ChunkRows int
	// MemoryBudget is the bytes the logits may take before ChunkRows = 0
	// chunks; 0 means DefaultMemoryBudget.
	MemoryBudget int64
	// Storage is how a float32 layer keeps x, dx and the products' operands
	// on the device: StorageF32 in float32; StorageBF16 in the usual
	// mixed-precision arrangement (CUDA only; MatMode FP32 or BF16, which
	// it implies): x and dx in bfloat16,
	// W as float32 master weights with a bfloat16 copy that the optimizer
	// step refreshes, products on bfloat16 operands accumulating in float32,
	// and the logits, loss, softmax statistics, b, dW and db in float32. The
	// API stays float32: x is rounded to bfloat16 once, as it is loaded, and
	// dx is widened on the way back.
	Storage Storage
	// VocabTile > 0 runs the softmax-cross-entropy of each row chunk over
	// vocabulary tiles of that many classes (CUDA, fused Xent): the chunk's
	// logits exist one rows×VocabTile tile at a time, its row statistics
	// carry from tile to tile, and a second pass recomputes each tile's
	// logits for the gradient (one more x·W product). 0: whole rows; a tile
	// of T or more is whole rows too.
	VocabTile int
	// Comm, when not nil and of more than one rank, makes the layer one
	// rank of a data-parallel job (package dist): each rank steps on its
	// share of the global batch; Step and Compute all-reduce the batch's
	// loss denominators (kept rows, their class weights, z-loss's kept
	// rows) over Comm before anything divides by them, and dW and db
	// (summed) between backward and the optimizer update, so that every
	// rank applies the same update and the loss returned is the global
	// batch's (Compute's dW and db too; its dx and per-row losses are the
	// rank's rows'). A rank whose share of a batch is empty passes x and
	// targets nil and takes part with zeros. Every rank must call Step and
	// Compute in the same order (Open and the other methods are local). A
	// bad share or a non-finite loss on one rank fails the step on every
	// rank: that rank returns its error, the others a *dist.PeerError
	// naming it, and no parameter changes. The protocol is package kit's Ranks (dsx/backend/kit).
	// A backend runs it only where Capabilities.DataParallel says so; nil
	// or dist.Local is the one-process layer, and a Comm of one rank gives
	// its results.
	Comm dist.Comm
}

// DefaultMemoryBudget is the logits budget when Config.MemoryBudget is 0.
const DefaultMemoryBudget = 1 << 30

// MaxChunkElements bounds a chunk's rows×T logits to fewer than 2³¹
// elements, so that no product operand spans more: cuBLAS's 32-bit API (and
// a BLAS with 32-bit integers) takes int sizes, and cuBLAS has failed on
// operands past 2³¹ elements.
const MaxChunkElements = 1<<31 - 1

// Chunk returns the rows per chunk for cfg (B when the batch runs whole):
// ChunkRows when > 0, B when -1, and for 0 the largest multiple of 256 rows
// (at least 1 row) whose rows×T logits of esize bytes fit MemoryBudget;
// in every case at most ⌊MaxChunkElements/T⌋.
func (c Config) Chunk(esize int) int {
	return min(c.chunk(esize), max(1, MaxChunkElements/max(1, c.T)))
}

func (c Config) chunk(esize int) int {
	switch {
	case c.ChunkRows > 0:
		return min(c.ChunkRows, c.B)
	case c.ChunkRows < 0:
		return c.B
	}
	budget := c.MemoryBudget
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	row := int64(c.T) * int64(esize)
	if int64(c.B)*row <= budget {
		return c.B
	}
	r := int(budget / row)
	if r >= 256 {
		r -= r % 256
	}
	return max(1, min(r, c.B))
}

// MemStats is a layer's device memory, from its own allocations.
type MemStats struct {
	// State: parameters, their gradients and the optimizer state.
	StateBytes int64 `json:"state_bytes"`
	// Input: the batch buffers (x, targets, and dx when computed) for B
	// rows.
	InputBytes int64 `json:"input_bytes"`
	// Extra: everything else the step needs: logits, per-row values,
	// operand copies and scratch (activations and workspace).
	ExtraBytes int64 `json:"extra_bytes"`
	// DeviceBytes is the device memory in use now minus before the layer
	// allocated (cuMemGetInfo): its buffers plus what libraries such as
	// cuBLAS allocated for it (workspace) and the allocator's rounding; 0
	// when unknown.
	DeviceBytes int64 `json:"device_bytes,omitempty"`
	// ChunkRows is the rows per chunk (B when the batch runs whole).
	ChunkRows int `json:"chunk_rows"`
}

// Result holds one batch's loss and gradients. Tensors are host copies owned by
// the caller, nil when not wanted.
type Result struct {
	Loss   float64       // reduced loss (for Reduction None: the sum of Losses)
	Losses *tensor.Dense // per-row losses, Reduction None only
	DW     *tensor.Dense // N×T
	DB     *tensor.Dense // T
	DX     *tensor.Dense // rows×N
}

// Layer runs the classifier head for one configuration on one device.
//
// Batches are host tensors of the layer's dtype: x is rows×N with
// 1 ≤ rows ≤ B; targets are rows class indices (stored as floats) or rows×T
// probabilities. A Layer is not safe for concurrent use.
type Layer interface {
	// Config returns the configuration the layer was opened with.
	Config() Config
	// SetParams copies W (N×T) and b (T) into the layer and resets the
	// optimizer state. NaN or ±Inf in W or b is an error wrapping
	// ErrNonFinite, and the layer keeps its parameters.
	SetParams(W, b *tensor.Dense) error
	// Params returns host copies of W and b.
	Params() (W, b *tensor.Dense, err error)
	// Compute runs forward and backward for one batch without changing the
	// parameters.
	Compute(x, targets *tensor.Dense) (*Result, error)
	// Step runs forward, backward and one optimizer update; it returns the
	// loss. A batch whose logits are not finite (NaN or ±Inf in x, non-finite
	// parameters, or x·W + b overflowing) makes Compute and Step return a
	// *graph.NonFiniteError (wrapping ErrNonFinite) that names the row and
	// what is to blame, and Step then leaves the parameters and the optimizer
	// state as they were.
	Step(x, targets *tensor.Dense) (float64, error)
	// Logits returns x·W + b (rows×T) as a host copy.
	Logits(x *tensor.Dense) (*tensor.Dense, error)
	// OptimizerState returns host copies of the optimizer's state: its
	// kind, the steps taken since the last reset, and its buffers (see
	// OptimizerState). With Params, it is what a checkpoint needs.
	OptimizerState() (OptimizerState, error)
	// SetOptimizerState replaces the optimizer's state with a copy of s.
	// Restoring a layer is SetParams (which resets the state), then
	// SetOptimizerState: the next steps are then bitwise those of the
	// layer the two were taken from, on the same device. A state of
	// another optimizer kind, or whose tensors differ in name, shape or
	// dtype from those the layer keeps, or are not finite, is an error
	// (CheckOptimizerState) and the layer keeps its state.
	SetOptimizerState(s OptimizerState) error
	// Close frees the layer's memory; the layer is unusable afterwards.
	Close() error
}

// Device describes one device a backend can use.
type Device struct {
	Name        string `json:"name"`
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	Compute     string `json:"compute_capability,omitempty"`
	Driver      string `json:"driver,omitempty"`
	Threads     int    `json:"threads,omitempty"`
}

// Backend opens layers on one kind of device.
type Backend interface {
	// Name is the registry name ("cpu", "cuda").
	Name() string
	// Available returns nil, or an error wrapping ErrUnavailable that says why.
	Available() error
	// Devices lists the devices this backend would use.
	Devices() ([]Device, error)
	// Capabilities declares what the backend runs beyond the defaults:
	// dtypes, matmul modes, storages, softmax-cross-entropy
	// implementations and their loss options, chunking, vocabulary tiles.
	// It needs no device (it is the same whether or not one is available)
	// and is what Open checks a Config against.
	Capabilities() Capabilities
	// Open makes a layer for cfg. A cfg that Capabilities does not cover
	// is an error wrapping ErrNotImplemented.
	Open(cfg Config) (Layer, error)
}

type entry struct {
	priority int
	b        Backend
}

var (
	mu       sync.Mutex
	registry = map[string]entry{}
)

// Register adds a backend; a higher priority wins under "auto". Registering a
// name twice replaces the earlier one.
func Register(b Backend, priority int) {
	mu.Lock()
	defer mu.Unlock()
	registry[b.Name()] = entry{priority, b}
}

// Names lists the registered backends, best first.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		pi, pj := registry[names[i]].priority, registry[names[j]].priority
		if pi != pj {
			return pi > pj
		}
		return names[i] < names[j]
	})
	return names
}

// EnvDevice is the environment variable read when the name is "" or "auto".
const EnvDevice = "DSX_DEVICE"

// Get returns the backend registered under name, or an error wrapping
// ErrUnavailable when it is not compiled into this binary.
func Get(name string) (Backend, error) {
	mu.Lock()
	e, ok := registry[name]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("backend %q: %w: %s", name, ErrUnavailable, notRegistered(name))
	}
	return e.b, nil
}

// imports says how each backend of this module is linked into a program:
// a backend registers itself from the init function of its package.
var imports = map[string]string{
	"cpu":      `import _ "dsx/cpu"`,
	"cuda":     `build with -tags gpu (the dsx-gpu binary), or import _ "dsx/backend/cuda" in a gpu build`,
	"cuda-emu": `import _ "dsx/backend/cuda/emu"`,
}

// notRegistered says why name is not in the registry and how to put it
// there.
func notRegistered(name string) string {
	have := "none is registered"
	if n := Names(); len(n) > 0 {
		have = "registered: " + strings.Join(n, ", ")
	}
	if imp, ok := imports[name]; ok {
		return fmt.Sprintf("not in this build (%s); to link it in, %s", have, imp)
	}
	known := slices.Sorted(maps.Keys(imports))
	return fmt.Sprintf("no backend of that name (%s; this module's are %s)", have, strings.Join(known, ", "))
}

// noneRegistered is Choose's error when the registry is empty.
func noneRegistered() error {
	return fmt.Errorf("%w: no backend is registered in this build: a program links one in by importing its package, e.g. %s (the CPU), or for the GPU: %s",
		ErrUnavailable, imports["cpu"], imports["cuda"])
}

// Choose picks a backend by name. "" and "auto" read DSX_DEVICE and, if that
// is empty or "auto" too, take the available backend of highest priority. It
// also returns one line saying which backend was chosen and why.
func Choose(name string) (Backend, string, error) {
	if name == "" || name == "auto" {
		if env := os.Getenv(EnvDevice); env != "" && env != "auto" {
			b, err := Get(env)
			if err != nil {
				return nil, "", fmt.Errorf("%s=%s: %w", EnvDevice, env, err)
			}
			if err := b.Available(); err != nil {
				return nil, "", fmt.Errorf("%s=%s: %w", EnvDevice, env, err)
			}
			return b, fmt.Sprintf("device %s (from %s)", env, EnvDevice), nil
		}
		names := Names()
		if len(names) == 0 {
			return nil, "", noneRegistered()
		}
		var why []string
		for _, n := range names {
			b, _ := Get(n)
			err := b.Available()
			if err == nil {
				reason := fmt.Sprintf("device %s (auto", n)
				if len(why) > 0 {
					reason += "; " + strings.Join(why, "; ")
				}
				return b, reason + ")", nil
			}
			why = append(why, err.Error())
		}
		return nil, "", fmt.Errorf("%w: no backend is usable: %s", ErrUnavailable, strings.Join(why, "; "))
	}
	b, err := Get(name)
	if err != nil {
		return nil, "", err
	}
	if err := b.Available(); err != nil {
		return nil, "", err
	}
	return b, fmt.Sprintf("device %s (asked for)", name), nil
}
