package dist

import (
	"fmt"
	"strconv"
	"strings"
)

// Comm is a communicator: the ranks of one job and their collectives.
// Every rank must call a collective in the same order with buffers of the
// same length; a collective that fails (a lost rank, a mismatch) returns an
// error and the job should end (Abort).
type Comm interface {
	// Rank is this process's rank in [0, Size).
	Rank() int
	// Size is the number of ranks.
	Size() int
	// LocalRank is this process's rank among those on its host (which GPU
	// it takes), LocalSize their number.
	LocalRank() int
	LocalSize() int
	// Engine names the engine and its library ("local", "mpi: Open MPI
	// v4.1.4 (libmpi.so.40)").
	Engine() string
	// AllReduceF32 and AllReduceF64 replace buf, on every rank, by the
	// element-wise sum of every rank's buf.
	AllReduceF32(buf []float32) error
	AllReduceF64(buf []float64) error
	// Broadcast replaces buf, on every rank, by root's buf.
	Broadcast(buf []byte, root int) error
	// Barrier returns once every rank has called it.
	Barrier() error
	// Abort ends every rank of the job with code, as MPI_Abort does; it
	// is for errors, after the error has been reported.
	Abort(code int)
	// Close leaves the job (MPI_Finalize); the Comm is unusable afterwards.
	Close() error
}

// Local is a world of one process: every collective leaves its buffer as
// it is.
type Local struct{}

func (Local) Rank() int                    { return 0 }
func (Local) Size() int                    { return 1 }
func (Local) LocalRank() int               { return 0 }
func (Local) LocalSize() int               { return 1 }
func (Local) Engine() string               { return "local" }
func (Local) AllReduceF32([]float32) error { return nil }
func (Local) AllReduceF64([]float64) error { return nil }
func (Local) Broadcast(_ []byte, root int) error {
	if root != 0 {
		return fmt.Errorf("dist: broadcast from rank %d in a world of one", root)
	}
	return nil
}
func (Local) Barrier() error { return nil }
func (Local) Abort(int)      {}
func (Local) Close() error   { return nil }

// Share is rank's part [lo, hi) of n rows split over size ranks: the
// first n mod size ranks take one row more, so shares differ by at most
// one row and follow each other in rank order (rank 0 has the first rows).
func Share(n, rank, size int) (lo, hi int) {
	q, r := n/size, n%size
	lo = rank*q + min(rank, r)
	hi = lo + q
	if rank < r {
		hi++
	}
	return lo, hi
}

// PeerError is what a rank returns from a collective step that other ranks
// failed: each of those reports its own error, this one names them, so that
// every rank stops at the same step.
type PeerError struct {
	Ranks []int // the ranks that failed, in order
	Size  int
}

func (e *PeerError) Error() string {
	s := make([]string, len(e.Ranks))
	for i, r := range e.Ranks {
		s[i] = strconv.Itoa(r)
	}
	what := "rank " + strings.Join(s, ", ")
	if len(s) > 1 {
		what = "ranks " + strings.Join(s, ", ")
	}
	return fmt.Sprintf("dist: %s of %d failed this step (the error is reported there)", what, e.Size)
}

// Failed all-reduces one flag a rank, set where failed, and returns nil when
// no rank failed, else a *PeerError naming those that did. Every rank must
// call it at the same point of the step.
func Failed(c Comm, failed bool) error {
	flags := make([]float64, c.Size())
	if failed {
		flags[c.Rank()] = 1
	}
	if err := c.AllReduceF64(flags); err != nil {
		return err
	}
	return FailedRanks(flags)
}

// FailedRanks is the *PeerError of all-reduced flags, one a rank (flag r >
// 0: rank r failed), nil when none is set.
func FailedRanks(flags []float64) error {
	var bad []int
	for r, f := range flags {
		if f > 0 {
			bad = append(bad, r)
		}
	}
	if bad == nil {
		return nil
	}
	return &PeerError{Ranks: bad, Size: len(flags)}
}
