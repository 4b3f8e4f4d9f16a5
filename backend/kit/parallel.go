package kit

import (
	"dsx/backend"
	"fmt"
	"time"

	"dsx/dist"
	"dsx/graph"
	"dsx/internal/rowmath"

	"gorgonia.org/tensor"
)

// Ranks is a layer's side of a data-parallel step (Config.Comm), the same
// on every backend. A step is "local gradients → reduce → update":
//
//  1. each rank checks its share of the global batch; Denominators
//     all-reduces the shares' Mean denominators (kept rows, their summed
//     class weights, z-loss's kept rows) before anything divides by them,
//     so every row is scaled by the global batch's denominator;
//  2. each rank runs forward and backward on its rows;
//  3. Status all-reduces the loss with one flag a rank, so that a bad
//     share or a non-finite loss on one rank fails the step on every rank
//     (that rank returns its error, the others a *dist.PeerError naming
//     it) and no rank goes on to a collective the others skip;
//  4. the backend all-reduces dW and db (in place on the host, or on the
//     device: NCCL), and every rank applies the same update.
//
// A rank whose share of a batch is empty (a tail batch of fewer rows than
// ranks) calls Step or Compute with x and targets nil: it takes part in
// every collective with zeros.
type Ranks struct {
	c     dist.Comm
	stats ReduceStats
}

// ReduceStats is what a data-parallel layer's all-reduces of dW and db have
// taken since it opened.
type ReduceStats struct {
	How     string  `json:"how"`     // "host copies over mpi: Open MPI v4.1.4 (libmpi.so.40)", "NCCL 2.19.3 on the device"
	Calls   int     `json:"calls"`   // steps (and Computes) reduced
	Seconds float64 `json:"seconds"` // wall time in them, from the first copy out to the last copy back
	Bytes   int64   `json:"bytes"`   // bytes of dW and db each rank put into them
}

// Parallel is implemented by layers that can step as one rank of a
// data-parallel job: Ranks is nil for a one-process layer.
type Parallel interface {
	Ranks() *Ranks
}

// DataParallel returns the Ranks of a layer opened with cfg, nil when the
// layer runs as one process: Comm nil or dist.Local. A Comm of one rank of
// any other kind takes the data-parallel path, whose collectives are then
// the identity (tests check it against the one-process layer that way).
func DataParallel(cfg backend.Config) *Ranks {
	switch cfg.Comm.(type) {
	case nil, dist.Local, *dist.Local:
		return nil
	}
	return &Ranks{c: cfg.Comm}
}

// Comm is the communicator.
func (r *Ranks) Comm() dist.Comm { return r.c }

// NoRows reports whether a batch is this rank's empty share (x and targets
// both nil) on a data-parallel layer.
func (r *Ranks) NoRows(x, targets *tensor.Dense) bool {
	return r != nil && x == nil && targets == nil
}

// Denominators replaces d (the cross-entropy's and the z-loss's Mean
// denominators of this rank's rows; zeros for no rows or a bad share) by
// their sums over the ranks. Under Sum and None there are none and
// nothing is sent (every rank has the same Reduction).
func (r *Ranks) Denominators(lo *graph.LossOptions, d *[2]float64) error {
	if lo.Reduction != graph.Mean {
		return nil
	}
	if err := r.c.AllReduceF64(d[:]); err != nil {
		return fmt.Errorf("all-reducing the batch's denominators: %w", err)
	}
	return nil
}

// Status ends the local part of a step: it all-reduces this rank's loss
// (ignored when err is not nil) with one flag a rank. It returns the
// global batch's loss; err itself when this rank failed; a
// *dist.PeerError naming the failed ranks when only others did.
func (r *Ranks) Status(loss float64, err error) (float64, error) {
	buf := make([]float64, 1+r.c.Size())
	if err != nil {
		buf[1+r.c.Rank()] = 1
	} else {
		buf[0] = loss
	}
	if cerr := r.c.AllReduceF64(buf); cerr != nil {
		return 0, fmt.Errorf("all-reducing the step's loss: %w", cerr)
	}
	if err != nil {
		return 0, err
	}
	if err := dist.FailedRanks(buf[1:]); err != nil {
		return 0, err
	}
	return buf[0], nil
}

// Reduce runs f, the all-reduce of a step's dW and db (bytes of them, by
// the means how), and adds its time to Stats.
func (r *Ranks) Reduce(how string, bytes int64, f func() error) error {
	t0 := time.Now()
	err := f()
	r.stats.How = how
	r.stats.Calls++
	r.stats.Seconds += time.Since(t0).Seconds()
	r.stats.Bytes += bytes
	return err
}

// Stats is what the all-reduces of dW and db have taken so far.
func (r *Ranks) Stats() ReduceStats { return r.stats }

// Skip takes part in a step this rank cannot run (its share of the batch
// could not be read): zeros for the denominators and its error in the
// status, so that the step fails on every rank rather than leave the
// others waiting in its collectives. It returns err.
func (r *Ranks) Skip(lo *graph.LossOptions, err error) error {
	var d [2]float64
	if derr := r.Denominators(lo, &d); derr != nil {
		return derr
	}
	_, err = r.Status(0, err)
	return err
}

// LocalDenominators are the Mean denominators (rowmath.Denominator and
// rowmath.KeptRows) of rows rows of checked targets, for Denominators.
func LocalDenominators(cfg backend.Config, targets *tensor.Dense, rows int) [2]float64 {
	o := (*rowmath.Options)(&cfg.Loss)
	switch t := targets.Data().(type) {
	case []float32:
		return [2]float64{rowmath.Denominator(t, rows, o), rowmath.KeptRows(t, rows, o)}
	case []float64:
		return [2]float64{rowmath.Denominator(t, rows, o), rowmath.KeptRows(t, rows, o)}
	}
	return [2]float64{}
}
