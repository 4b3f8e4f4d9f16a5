package backend

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"

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
	// ErrOutOfMemory: the device has too little memory for the request.
	ErrOutOfMemory = errors.New("out of device memory")
)

// Optimizer configures the update applied by Layer.Step. The formulas are
// PyTorch's: for SGD, g += wd·w; v = momentum·v + g; w −= lr·v. For Adam,
// g += wd·w (or, with Decoupled, w −= lr·wd·w: AdamW); m and v with bias
// correction; w −= lr·m̂/(√v̂ + eps).
type Optimizer struct {
	Kind        string  // "sgd" or "adam"
	LR          float64 // learning rate
	Momentum    float64 // SGD
	Beta1       float64 // Adam; 0 means 0.9
	Beta2       float64 // Adam; 0 means 0.999
	Eps         float64 // Adam; 0 means 1e-8
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
	case "sgd", "adam":
	case "":
		return nil
	default:
		return fmt.Errorf("optimizer %q: want sgd or adam", o.Kind)
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
type Config struct {
	graph.Spec           // B is the largest batch; smaller batches are allowed
	Optimizer  Optimizer // for Step; zero Kind means Step is an error
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
	// optimizer state.
	SetParams(W, b *tensor.Dense) error
	// Params returns host copies of W and b.
	Params() (W, b *tensor.Dense, err error)
	// Compute runs forward and backward for one batch without changing the
	// parameters.
	Compute(x, targets *tensor.Dense) (*Result, error)
	// Step runs forward, backward and one optimizer update; it returns the
	// loss.
	Step(x, targets *tensor.Dense) (float64, error)
	// Logits returns x·W + b (rows×T) as a host copy.
	Logits(x *tensor.Dense) (*tensor.Dense, error)
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
	// Open makes a layer for cfg.
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
		return nil, fmt.Errorf("backend %q: %w: not in this build (have %s)", name, ErrUnavailable, strings.Join(Names(), ", "))
	}
	return e.b, nil
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
		var why []string
		for _, n := range Names() {
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

// CheckBatch validates a batch against a layer's configuration and returns its
// row count. Every backend calls it first so that bad input gets the same
// error everywhere.
func CheckBatch(cfg Config, x, targets *tensor.Dense) (int, error) {
	if x == nil {
		return 0, errors.New("batch: x is nil")
	}
	s := x.Shape()
	if s.Dims() != 2 || s[1] != cfg.N {
		return 0, fmt.Errorf("batch: x has shape %v, want rows×%d", s, cfg.N)
	}
	rows := s[0]
	if rows < 1 || rows > cfg.B {
		return 0, fmt.Errorf("batch: %d rows, want 1..%d (the layer's B)", rows, cfg.B)
	}
	if x.Dtype() != cfg.DType {
		return 0, fmt.Errorf("batch: x is %v, layer is %v", x.Dtype(), cfg.DType)
	}
	if targets == nil {
		return rows, nil
	}
	ts := targets.Shape()
	if targets.Dtype() != cfg.DType {
		return 0, fmt.Errorf("batch: targets are %v, layer is %v", targets.Dtype(), cfg.DType)
	}
	if cfg.Loss.SoftTargets {
		if ts.Dims() != 2 || ts[0] != rows || ts[1] != cfg.T {
			return 0, fmt.Errorf("batch: probability targets have shape %v, want %d×%d", ts, rows, cfg.T)
		}
	} else if ts.Dims() != 1 || ts[0] != rows {
		return 0, fmt.Errorf("batch: class-index targets have shape %v, want (%d)", ts, rows)
	}
	return rows, nil
}

// CheckParams validates W and b for a layer.
func CheckParams(cfg Config, W, b *tensor.Dense) error {
	if W == nil || b == nil {
		return errors.New("params: W and b must both be given")
	}
	if s := W.Shape(); s.Dims() != 2 || s[0] != cfg.N || s[1] != cfg.T {
		return fmt.Errorf("params: W has shape %v, want %d×%d", s, cfg.N, cfg.T)
	}
	if s := b.Shape(); s.Dims() != 1 || s[0] != cfg.T {
		return fmt.Errorf("params: b has shape %v, want (%d)", s, cfg.T)
	}
	if W.Dtype() != cfg.DType || b.Dtype() != cfg.DType {
		return fmt.Errorf("params: W is %v and b %v, layer is %v", W.Dtype(), b.Dtype(), cfg.DType)
	}
	return nil
}
