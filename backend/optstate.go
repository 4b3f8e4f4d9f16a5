package backend

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

// OptimizerState is a layer's optimizer state as host copies: with W and b
// (Layer.Params), what a checkpoint holds so that a layer restored from it
// (SetParams, then SetOptimizerState) takes the same next steps as the
// layer it was saved from, bit for bit, on the same device.
//
// It mirrors PyTorch's optimizer state_dict: the step count and, per
// parameter, the buffers under PyTorch's names.
type OptimizerState struct {
	// Kind is the optimizer the state belongs to (NoOptimizer for a layer
	// without one, whose state is empty).
	Kind OptimizerKind
	// Step is the optimizer steps taken since the state was last reset
	// (Open, SetParams): Adam's bias correction depends on it (PyTorch's
	// state["step"]).
	Step int
	// Tensors are the state's buffers by name, each of the layer's dtype
	// and of its parameter's shape (W: N×T, b: T); OptimizerTensors lists
	// them for a configuration. They exist only once the first step has
	// made them: a state of Step 0 has none, as in PyTorch, whose SGD
	// starts the momentum buffer at the first gradient (a zero buffer
	// would give the same update, but an empty state says "not started").
	Tensors map[string]*tensor.Dense
}

// The names of optimizer state buffers, PyTorch's (torch.optim.SGD and
// Adam), prefixed with the parameter's name and a dot: "W.exp_avg".
const (
	MomentumBuffer = "momentum_buffer" // SGD with momentum: the velocity v
	ExpAvg         = "exp_avg"         // Adam: the first moment m
	ExpAvgSq       = "exp_avg_sq"      // Adam: the second moment v (never negative)
)

// StateTensor names one buffer of an optimizer state and gives its shape.
type StateTensor struct {
	Name  string // Param + "." + Slot, e.g. "W.exp_avg"
	Param string // "W" or "b"
	Slot  string // MomentumBuffer, ExpAvg or ExpAvgSq
	Shape []int  // the parameter's: N×T for W, T for b
}

// OptimizerTensors lists the buffers of the state of cfg's optimizer after
// its first step, W's first: none for SGD without momentum or without an
// optimizer.
func OptimizerTensors(cfg Config) []StateTensor {
	var slots []string
	switch o := cfg.Optimizer; {
	case o.Kind == SGD && o.Momentum != 0:
		slots = []string{MomentumBuffer}
	case o.Kind == Adam:
		slots = []string{ExpAvg, ExpAvgSq}
	}
	var out []StateTensor
	for _, p := range []struct {
		name  string
		shape []int
	}{{"W", []int{cfg.N, cfg.T}}, {"b", []int{cfg.T}}} {
		for _, s := range slots {
			out = append(out, StateTensor{Name: p.name + "." + s, Param: p.name, Slot: s, Shape: slices.Clone(p.shape)})
		}
	}
	return out
}

// CheckOptimizerState validates s for a layer of cfg: the optimizer's kind,
// the step count, and the tensors' names, shapes, dtype and values (finite;
// Adam's second moments not negative). Every backend's SetOptimizerState
// calls it first, so that a state that cannot belong to the layer gets
// the same error everywhere and changes nothing.
func CheckOptimizerState(cfg Config, s OptimizerState) error {
	if s.Kind != cfg.Optimizer.Kind {
		return fmt.Errorf("optimizer state: it is %v's, the layer's optimizer is %v", s.Kind, cfg.Optimizer.Kind)
	}
	if s.Step < 0 {
		return fmt.Errorf("optimizer state: step %d is negative", s.Step)
	}
	want := OptimizerTensors(cfg)
	if s.Step == 0 {
		want = nil // nothing is made before the first step
	}
	names := make(map[string]bool, len(want))
	for _, w := range want {
		names[w.Name] = true
		t := s.Tensors[w.Name]
		if t == nil {
			return fmt.Errorf("optimizer state: %s is missing (the state of %s after step %d holds %s)", w.Name, describe(cfg.Optimizer), s.Step, nameList(want))
		}
		if !slices.Equal(t.Shape(), tensor.Shape(w.Shape)) {
			return fmt.Errorf("optimizer state: %s has shape %v, want %v", w.Name, t.Shape(), tensor.Shape(w.Shape))
		}
		if t.Dtype() != cfg.DType {
			return fmt.Errorf("optimizer state: %s is %v, layer is %v", w.Name, t.Dtype(), cfg.DType)
		}
		if at, v, ok := firstNonFinite(t); !ok {
			return fmt.Errorf("optimizer state: %s%s is %v: %w", w.Name, index(t, at), v, ErrNonFinite)
		}
		if w.Slot == ExpAvgSq {
			if at, v, ok := firstNegative(t); !ok {
				return fmt.Errorf("optimizer state: %s%s is %v: a second moment cannot be negative", w.Name, index(t, at), v)
			}
		}
	}
	var extra []string
	for n := range s.Tensors {
		if !names[n] {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		why := fmt.Sprintf("the state of %s after step %d holds %s", describe(cfg.Optimizer), s.Step, nameList(want))
		return fmt.Errorf("optimizer state: unexpected %s (%s)", strings.Join(extra, ", "), why)
	}
	return nil
}

// describe names an optimizer for the errors above ("sgd with momentum").
func describe(o Optimizer) string {
	if o.Kind == SGD {
		if o.Momentum != 0 {
			return "sgd with momentum"
		}
		return "sgd without momentum"
	}
	return o.Kind.String()
}

func nameList(ts []StateTensor) string {
	if len(ts) == 0 {
		return "no tensors"
	}
	n := make([]string, len(ts))
	for i, t := range ts {
		n[i] = t.Name
	}
	return strings.Join(n, ", ")
}

// firstNegative returns the index and value of t's first negative value,
// and ok = true when there is none.
func firstNegative(t *tensor.Dense) (int, float64, bool) {
	switch d := t.Data().(type) {
	case []float32:
		return scanNegative(d)
	case []float64:
		return scanNegative(d)
	}
	return 0, 0, true
}

func scanNegative[F dense.Float](d []F) (int, float64, bool) {
	for i, v := range d {
		if v < 0 {
			return i, float64(v), false
		}
	}
	return 0, 0, true
}
