package run

import (
	"fmt"
	"slices"
	"unsafe"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	"dsx/backend/kit"
	"dsx/internal/rowmath"

	"gorgonia.org/tensor"
)

// parallel is a data-parallel layer's state beside the one-process
// layer's.
type parallel struct {
	denom  [2]float64 // the loaded share's Mean denominators
	chosen bool       // red decided (at the first reduce: a collective)
	red    Reducer    // the device's own reducer, nil: host copies
	how    string
	stage  []byte // host copies of dW and db, one all-reduce for both
}

// parallel is Step (update) and Compute of a data-parallel layer, the
// protocol of kit.Ranks: the share is loaded and its denominators
// all-reduced; the scales of the global batch are written over the plan's
// own (its xent_scale step is skipped) and the plan runs on the share;
// status and loss are all-reduced; dW and db are all-reduced on the device
// (Collectives) or through one host copy; then the optimizer runs, or the
// results are copied out. x and targets nil are an empty share; loaded
// means the batch Load left (StepLoaded).
func (l *Layer) parallel(x, targets *tensor.Dense, loaded, update bool) (*backend.Result, error) {
	none := l.ranks.NoRows(x, targets) && !loaded
	rows, d := 0, [2]float64{}
	var err error
	switch {
	case loaded:
		rows, d = l.loaded, l.par.denom
	case !none:
		err = l.dev.Do(func() error {
			var err error
			rows, err = l.load(x, targets)
			return err
		})
		if err == nil {
			d = l.par.denom
		}
	}
	if derr := l.ranks.Denominators(&l.cfg.Loss, &d); derr != nil {
		return nil, fmt.Errorf("%s: %w", l.name, derr)
	}
	r := &backend.Result{}
	if err == nil {
		err = l.dev.Do(func() error {
			if none {
				return l.zeroGradients()
			}
			if err := l.writeScales(d); err != nil {
				return err
			}
			if err := l.runPlan(l.low.Train, l.train, rows, false, nil); err != nil {
				return err
			}
			var err error
			r.Loss, err = l.checkedLoss(rows)
			return err
		})
	}
	if r.Loss, err = l.ranks.Status(r.Loss, err); err != nil {
		return nil, err
	}
	if err := l.reduce(); err != nil {
		return nil, err
	}
	err = l.dev.Do(func() error {
		if update {
			return l.update(rows)
		}
		return l.results(r, rows)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// writeScales writes the reduction's scales for the global batch's
// denominators d over the plan's scale buffer (inside Do).
func (l *Layer) writeScales(d [2]float64) error {
	if l.low.Train.Scale == nil {
		return nil
	}
	o := (*rowmath.Options)(&l.cfg.Loss)
	s := []float64{rowmath.Scale(o, d[0]), rowmath.Scale(o, d[1])}
	if err := l.mem.ToDevice(l.addr(l.low.Train.Scale), bytesOf(s)); err != nil {
		return fmt.Errorf("%s: writing the global batch's scales: %w", l.name, err)
	}
	return nil
}

// zeroGradients is an empty share's dW and db: zeros (inside Do).
func (l *Layer) zeroGradients() error {
	for _, b := range []*lower.Buffer{l.low.Train.DW, l.low.Train.DB} {
		if b == nil {
			continue
		}
		if err := l.mem.Zero(b); err != nil {
			return fmt.Errorf("%s: zeroing %s: %w", l.name, b.What, err)
		}
	}
	return nil
}

// gradients are the buffers of dW and db with their elements.
func (l *Layer) gradients() ([]*lower.Buffer, []int) {
	var bufs []*lower.Buffer
	var n []int
	for _, g := range []struct {
		b *lower.Buffer
		n int
	}{{l.low.Train.DW, l.cfg.N * l.cfg.T}, {l.low.Train.DB, l.cfg.T}} {
		if g.b != nil {
			bufs, n = append(bufs, g.b), append(n, g.n)
		}
	}
	return bufs, n
}

// reduce all-reduces dW and db, on the device when every rank's device can
// (decided at the first call, a collective), else through one host copy.
func (l *Layer) reduce() error {
	bufs, n := l.gradients()
	if len(bufs) == 0 {
		return nil
	}
	if !l.par.chosen {
		if err := l.chooseReducer(); err != nil {
			return err
		}
	}
	es := int(l.low.ESize)
	total := 0
	for _, k := range n {
		total += k
	}
	c := l.ranks.Comm()
	return l.ranks.Reduce(l.par.how, int64(total*es), func() error {
		if red := l.par.red; red != nil {
			return l.dev.Do(func() error {
				for i, b := range bufs {
					if err := red.AllReduce(l.addr(b), n[i], l.low.F32); err != nil {
						return fmt.Errorf("%s: all-reducing %s: %w", l.name, b.What, err)
					}
				}
				return nil
			})
		}
		if len(l.par.stage) < total*es {
			l.par.stage = make([]byte, total*es)
		}
		st := l.par.stage[:total*es]
		copyAll := func(toHost bool) error {
			off := 0
			for i, b := range bufs {
				part := st[off : off+n[i]*es]
				var err error
				if toHost {
					err = l.mem.ToHost(part, l.addr(b))
				} else {
					err = l.mem.ToDevice(l.addr(b), part)
				}
				if err != nil {
					return fmt.Errorf("%s: copying %s for its all-reduce: %w", l.name, b.What, err)
				}
				off += len(part)
			}
			return nil
		}
		if err := l.dev.Do(func() error { return copyAll(true) }); err != nil {
			return err
		}
		var err error
		if l.low.F32 {
			err = c.AllReduceF32(unsafe.Slice((*float32)(unsafe.Pointer(&st[0])), total))
		} else {
			err = c.AllReduceF64(unsafe.Slice((*float64)(unsafe.Pointer(&st[0])), total))
		}
		if err != nil {
			return fmt.Errorf("%s: all-reducing dW and db: %w", l.name, err)
		}
		return l.dev.Do(func() error { return copyAll(false) })
	})
}

// chooseReducer decides, with every rank, how dW and db are reduced: on
// the devices when every rank's can and no two ranks share one (NCCL
// refuses two ranks on one GPU), else through host copies. Each rank puts
// its device's key (Reducer.Device) into one all-reduced vector, so that
// every rank reaches the same decision.
func (l *Layer) chooseReducer() error {
	c := l.ranks.Comm()
	var red Reducer
	why := "the device has no collectives of its own"
	if col, ok := l.dev.(Collectives); ok {
		red, why = col.Reducer(c)
	}
	keys := make([]float64, c.Size())
	if red != nil {
		keys[c.Rank()] = float64(red.Device()&(1<<52-1) | 1<<52) // exact in a float64, never 0
	}
	if err := c.AllReduceF64(keys); err != nil {
		return fmt.Errorf("%s: choosing how to all-reduce dW and db: %w", l.name, err)
	}
	l.par.chosen = true
	if red == nil {
		l.par.how = fmt.Sprintf("host copies over %s (%s)", c.Engine(), why)
		return nil
	}
	for r, k := range keys {
		if k == 0 {
			l.par.how = fmt.Sprintf("host copies over %s (rank %d's device cannot reduce its own memory)", c.Engine(), r)
			return nil
		}
		if i := slices.Index(keys, k); i != r {
			l.par.how = fmt.Sprintf("host copies over %s (ranks %d and %d share a GPU, which NCCL refuses)", c.Engine(), i, r)
			return nil
		}
	}
	if err := red.Init(); err != nil {
		return fmt.Errorf("%s: starting %s: %w", l.name, red.Name(), err)
	}
	l.par.red, l.par.how = red, red.Name()
	return nil
}

// Ranks is the layer's side of its data-parallel job (nil in one
// process).
func (l *Layer) Ranks() *kit.Ranks { return l.ranks }
