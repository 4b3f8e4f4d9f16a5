package backend

import (
	"slices"

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
