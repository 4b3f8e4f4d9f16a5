package cpu

import (
	"fmt"

	"dsx/backend/kit"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// gradients is a batch's loss and gradients: this rank's rows' all-reduced
// over the ranks of a data-parallel job (parallel.go), else the batch's.
func (l *layer) gradients(x, targets *tensor.Dense) (result, error) {
	if l.ranks != nil {
		return l.parallel(x, targets)
	}
	return l.run(x, targets, nil)
}

// parallel is a data-parallel layer's loss and gradients (the protocol of
// kit.Ranks): this rank's share of the global batch is checked, the
// shares' Mean denominators all-reduced, the share run forward and
// backward scaled by the global ones, its status and loss all-reduced, and
// dW and db all-reduced in place, so that every rank returns the global
// batch's loss and gradients; dx and per-row losses stay this share's. x
// and targets nil are an empty share: zeros in every collective.
func (l *layer) parallel(x, targets *tensor.Dense) (result, error) {
	if err := l.check(); err != nil {
		return result{}, err
	}
	none := l.ranks.NoRows(x, targets)
	var d [2]float64
	var err error
	if !none {
		d, err = l.share(x, targets)
	}
	if derr := l.ranks.Denominators(&l.cfg.Loss, &d); derr != nil {
		return result{}, fmt.Errorf("cpu: %w", derr)
	}
	var r result
	switch {
	case err != nil:
	case none:
		r, err = l.zeros()
	case l.cfg.Loss.Reduction == graph.Mean:
		r, err = l.run(x, targets, &d)
	default:
		r, err = l.run(x, targets, nil)
	}
	if r.loss, err = l.ranks.Status(r.loss, err); err != nil {
		return result{}, err
	}
	c := l.ranks.Comm()
	grads := []tensor.Tensor{r.dw, r.db}
	bytes := int64(0)
	for _, g := range grads {
		if g != nil {
			bytes += int64(g.Shape().TotalSize()) * int64(l.cfg.DType.Size())
		}
	}
	err = l.ranks.Reduce("in place over "+c.Engine(), bytes, func() error {
		for _, g := range grads {
			if g == nil {
				continue
			}
			var err error
			switch d := g.Data().(type) {
			case []float32:
				err = c.AllReduceF32(d)
			case []float64:
				err = c.AllReduceF64(d)
			}
			if err != nil {
				return fmt.Errorf("cpu: all-reducing the gradients: %w", err)
			}
		}
		return nil
	})
	return r, err
}

// Ranks is the layer's side of its data-parallel job (nil in one process).
func (l *layer) Ranks() *kit.Ranks { return l.ranks }

// share checks this rank's share of a batch and returns its Mean
// denominators.
func (l *layer) share(x, targets *tensor.Dense) ([2]float64, error) {
	if targets == nil {
		return [2]float64{}, fmt.Errorf("batch: targets are nil")
	}
	rows, err := kit.CheckBatch(l.cfg, x, targets)
	if err != nil {
		return [2]float64{}, err
	}
	denom, kept, err := wholeBatch(targets, rows, l.cfg.T, &l.cfg.Loss)
	return [2]float64{denom, kept}, err
}

// zeros is an empty share's result: loss 0 and zero dW and db (the chunk
// loop's buffers).
func (l *layer) zeros() (result, error) {
	if err := l.trainer(); err != nil {
		return result{}, err
	}
	dw, db := l.t32.grads()
	if l.t64 != nil {
		dw, db = l.t64.grads()
	}
	r := result{}
	for _, g := range []struct {
		t   *tensor.Dense
		out *tensor.Tensor
	}{{dw, &r.dw}, {db, &r.db}} {
		if g.t != nil {
			zero(g.t)
			*g.out = g.t
		}
	}
	return r, nil
}

func zero(t *tensor.Dense) {
	switch d := t.Data().(type) {
	case []float32:
		clear(d)
	case []float64:
		clear(d)
	}
}
