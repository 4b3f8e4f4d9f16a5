package run

import (
	"fmt"

	"dsx/backend"
	"dsx/backend/kit"

	"gorgonia.org/tensor"
)

// OptimizerState copies the optimizer's state buffers to the host. Before
// the first step (iter 0) the buffers are zeros that no step has used: the
// state has no tensors, as the CPU backend's and PyTorch's.
func (l *Layer) OptimizerState() (backend.OptimizerState, error) {
	if err := l.check(); err != nil {
		return backend.OptimizerState{}, err
	}
	s := backend.OptimizerState{Kind: l.cfg.Optimizer.Kind, Step: l.iter}
	if l.iter == 0 || len(l.low.OptimState) == 0 {
		return s, nil
	}
	s.Tensors = make(map[string]*tensor.Dense, len(l.low.OptimState))
	err := l.dev.Do(func() error {
		for _, sb := range l.low.OptimState {
			t, err := l.toHost(sb.Buf, sb.Tensor.Shape...)
			if err != nil {
				return err
			}
			s.Tensors[sb.Tensor.Name] = t
		}
		return nil
	})
	if err != nil {
		return backend.OptimizerState{}, err
	}
	return s, nil
}

// SetOptimizerState copies s into the state buffers (zeroes them for a
// state of step 0) and sets the step count. s is checked first
// (kit.CheckOptimizerState), so that a state that does not fit changes
// nothing; a copy that fails on the device leaves the state reset.
func (l *Layer) SetOptimizerState(s backend.OptimizerState) error {
	if err := l.check(); err != nil {
		return err
	}
	if err := kit.CheckOptimizerState(l.cfg, s); err != nil {
		return fmt.Errorf("%s: %w", l.name, err)
	}
	return l.dev.Do(func() error {
		if err := l.resetOptim(); err != nil {
			return err
		}
		if s.Step == 0 {
			return nil
		}
		for _, sb := range l.low.OptimState {
			t := contiguous(s.Tensors[sb.Tensor.Name])
			if err := l.toDevice(sb.Buf, t, int64(t.Len())); err != nil {
				l.resetOptim()
				return err
			}
		}
		l.iter = s.Step
		return nil
	})
}
