package kit

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"dsx/backend"
	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

// CheckOptimizerState validates s for a layer of cfg: the optimizer's kind,
// the step count, and the tensors' names, shapes, dtype and values (finite;
// Adam's second moments not negative). Every backend's SetOptimizerState
// calls it first, so that a state that cannot belong to the layer gets
// the same error everywhere and changes nothing.
func CheckOptimizerState(cfg backend.Config, s backend.OptimizerState) error {
	if s.Kind != cfg.Optimizer.Kind {
		return fmt.Errorf("optimizer state: it is %v's, the layer's optimizer is %v", s.Kind, cfg.Optimizer.Kind)
	}
	if s.Step < 0 {
		return fmt.Errorf("optimizer state: step %d is negative", s.Step)
	}
	want := backend.OptimizerTensors(cfg)
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
			return fmt.Errorf("optimizer state: %s%s is %v: %w", w.Name, index(t, at), v, backend.ErrNonFinite)
		}
		if w.Slot == backend.ExpAvgSq {
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
func describe(o backend.Optimizer) string {
	if o.Kind == backend.SGD {
		if o.Momentum != 0 {
			return "sgd with momentum"
		}
		return "sgd without momentum"
	}
	return o.Kind.String()
}

func nameList(ts []backend.StateTensor) string {
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
