package run

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"dsx/backend"
	"dsx/backend/kit"

	"gorgonia.org/tensor"
)

// Load copies and checks a batch once, for StepLoaded (kit.Resident).
func (l *Layer) Load(x, targets *tensor.Dense) error {
	return l.dev.Do(func() error {
		l.loaded = 0
		_, err := l.load(x, targets)
		return err
	})
}

// StepLoaded is Step on the batch Load left on the device.
func (l *Layer) StepLoaded() (float64, error) {
	if err := kit.CheckStep(l.name, l.cfg); err != nil {
		return 0, err
	}
	if l.ranks != nil {
		if l.loaded == 0 {
			return 0, errors.New(l.name + ": StepLoaded before Load")
		}
		r, err := l.parallel(nil, nil, true, true)
		if err != nil {
			return 0, err
		}
		return r.Loss, nil
	}
	var loss float64
	err := l.dev.Do(func() error {
		if err := l.check(); err != nil {
			return err
		}
		if l.loaded == 0 {
			return errors.New(l.name + ": StepLoaded before Load")
		}
		var err error
		loss, err = l.step(l.loaded)
		return err
	})
	return loss, err
}

// MemStats sums the layer's allocations by category (kit.Stats).
func (l *Layer) MemStats() backend.MemStats {
	st := l.low.MemStats()
	l.dev.Do(func() error {
		if free, ok := l.dev.FreeBytes(); ok && l.free0 > 0 {
			st.DeviceBytes = l.free0 - free
		}
		return nil
	})
	return st
}

// FloorMs times the training plan's products alone, on the loaded batch's
// buffers (kit.Stats): the median of reps runs, each synchronised.
func (l *Layer) FloorMs(rows, reps int) (float64, error) {
	if rows < 1 || rows > l.cfg.B || reps < 1 {
		return 0, fmt.Errorf("%s: FloorMs(%d, %d): want 1 ≤ rows ≤ %d and reps ≥ 1", l.name, rows, reps, l.cfg.B)
	}
	if err := l.check(); err != nil {
		return 0, err
	}
	ms := make([]float64, 0, reps)
	err := l.dev.Do(func() error {
		for i := -1; i < reps; i++ {
			if err := l.dev.Sync(); err != nil {
				return err
			}
			t0 := time.Now()
			if err := l.runPlan(l.low.Train, l.train, rows, true, nil); err != nil {
				return err
			}
			if err := l.dev.Sync(); err != nil {
				return err
			}
			if i >= 0 {
				ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Float64s(ms)
	return ms[len(ms)/2], nil
}
