package main

// dsx bench under mpirun: every rank times its layer on its share of each
// shape's global batch B (the same inputs drawn on every rank), its step
// ends with the all-reduce of dW and db, and rank 0 reports, with the
// all-reduce's time and bytes a step.

import (
	"dsx/backend"
	"dsx/backend/kit"
	"dsx/dist"

	"gorgonia.org/tensor"
)

// ranks is the job's size, 1 for a process alone.
func (o benchOpts) ranks() int {
	if o.comm == nil {
		return 1
	}
	return o.comm.Size()
}

// share makes cfg a data-parallel rank's layer (Comm, B its share) and
// returns its share of the batch; alone, the whole batch.
func (o benchOpts) share(cfg *backend.Config, d benchData, B int) (x, y *tensor.Dense, rows int, err error) {
	if o.ranks() == 1 {
		return d.x, d.y, B, nil
	}
	lo, hi := dist.Share(B, o.comm.Rank(), o.comm.Size())
	_, first := dist.Share(B, 0, o.comm.Size())
	cfg.Comm, cfg.B = o.comm, first
	if lo == hi {
		return nil, nil, 0, nil
	}
	xs, err := d.x.Slice(tensor.S(lo, hi))
	if err != nil {
		return nil, nil, 0, err
	}
	ys, err := d.y.Slice(tensor.S(lo, hi))
	if err != nil {
		return nil, nil, 0, err
	}
	return xs.(*tensor.Dense).Materialize().(*tensor.Dense), ys.(*tensor.Dense).Materialize().(*tensor.Dense), hi - lo, nil
}

// parallelStats fills a data-parallel row's all-reduce time and bytes a
// step (the mean over every step the layer took: warm-up and timed).
func parallelStats(rec *benchRecord, l backend.Layer, ranks int) {
	p, ok := l.(kit.Parallel)
	if !ok || p.Ranks() == nil {
		return
	}
	s := p.Ranks().Stats()
	rec.Ranks = ranks
	if s.Calls > 0 {
		rec.AllReduceMs = 1000 * s.Seconds / float64(s.Calls)
		rec.AllReduceBytes = s.Bytes / int64(s.Calls)
		rec.Reduce = s.How
	}
}
