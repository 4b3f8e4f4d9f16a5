package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
)

// Set is a data set held in memory, row-major, usually labelled.
type Set struct {
	X       []float32 // Rows×N features, row-major
	Y       []int32   // Rows labels in [0, Classes); nil for a set without labels
	Rows, N int
	Classes int       // number of classes (max label + 1, or 10 for MNIST IDX); 0 without labels
	Source  string    // file(s) it came from, for error messages
	Stats   LoadStats // how it was read; zero for a set made in memory

	mapping []byte // the file mapping X lives in (Options.Map); nil when X is Go memory
}

// LoadStats says how a set was read: its format, the rows kept, the rows
// skipped and why, and how long reading took. dsx --json reports it.
type LoadStats struct {
	Format      string    `json:"format"` // csv, idx, npy, safetensors
	RowsRead    int       `json:"rows_read"`
	Skipped     []Skipped `json:"rows_skipped"`
	Bytes       int64     `json:"bytes"`
	LoadSeconds float64   `json:"load_seconds"`
	// Mapped says the features are the file's pages, mapped in place
	// (Options.Map), not a copy.
	Mapped bool `json:"mapped"`
}

// Skipped counts lines or rows left out of a set for one reason.
type Skipped struct {
	Rows   int    `json:"rows"`
	Reason string `json:"reason"`
}

// Labelled reports whether the set has labels.
func (s *Set) Labelled() bool { return s.Y != nil }

func (s *Set) name() string {
	if s.Source == "" {
		return "data set"
	}
	return s.Source
}

// Validate checks that the set is non-empty, that its dimensions agree with
// the lengths of X and Y, that every label lies in [0, Classes) and that no
// feature is NaN or infinite. A set without labels (Y nil) needs no
// Classes. Errors name the source, row and column (both 0-based).
func (s *Set) Validate() error {
	if err := s.validateLabels(); err != nil {
		return err
	}
	for i, v := range s.X {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: row %d, column %d: feature is %v", s.name(), i/s.N, i%s.N, v)
		}
	}
	return nil
}

// validateLabels is Validate without the pass over the features, for
// loaders that checked every feature as they read it.
func (s *Set) validateLabels() error {
	if s == nil {
		return fmt.Errorf("data set: nil")
	}
	switch {
	case s.Rows <= 0:
		return fmt.Errorf("%s: empty set (%d rows)", s.name(), s.Rows)
	case s.N <= 0:
		return fmt.Errorf("%s: empty set (%d features per row)", s.name(), s.N)
	case s.Y != nil && s.Classes <= 0:
		return fmt.Errorf("%s: %d classes, need at least 1", s.name(), s.Classes)
	}
	if s.N > math.MaxInt/s.Rows || len(s.X) != s.Rows*s.N {
		return fmt.Errorf("%s: %d rows × %d features does not match %d feature values", s.name(), s.Rows, s.N, len(s.X))
	}
	if s.Y == nil {
		return nil
	}
	if len(s.Y) != s.Rows {
		return fmt.Errorf("%s: %d rows but %d labels", s.name(), s.Rows, len(s.Y))
	}
	for i, y := range s.Y {
		if y < 0 || int(y) >= s.Classes {
			return fmt.Errorf("%s: row %d: label %d out of range [0, %d)", s.name(), i, y, s.Classes)
		}
	}
	return nil
}

// Shuffle returns a random permutation of the row indices 0..Rows-1, drawn
// from rng, a math/rand/v2 generator (not math/rand's): for instance
// rand.New(rand.NewPCG(seed, 0)) from "math/rand/v2", the same
// permutation for the same seed. The data itself is not moved; pass
// slices of the permutation to [Set.Batch].
func (s *Set) Shuffle(rng *rand.Rand) []int {
	return rng.Perm(s.Rows)
}

// Batch gathers the rows listed in idx into the caller-provided buffers:
// x receives len(idx)*N features and y receives len(idx) labels (left
// alone when the set has none). It does not allocate. The buffers must be
// at least that long and every index must be in [0, Rows); violating this
// is a programming error and panics like any out-of-range slice access.
// The only error is a mapped file (Options.Map) cut short by another
// program while the set is in use.
func (s *Set) Batch(idx []int, x []float32, y []int32) error {
	return s.guard(func() {
		n := s.N
		x := x[:len(idx)*n]
		y := y[:len(idx)]
		for i, r := range idx {
			copy(x[i*n:(i+1)*n], s.X[r*n:(r+1)*n])
			if s.Y != nil {
				y[i] = s.Y[r]
			}
		}
	})
}

// guard runs f, which reads s.X. When X is a file's mapped pages, a file
// truncated under the mapping (np.save over the same name, say) makes the
// next read fault; that fault becomes an error naming the file instead of
// a crash (runtime/debug.SetPanicOnFault, for this goroutine only, so f
// must not start others that read X).
func (s *Set) guard(f func()) (err error) {
	if s.mapping == nil {
		f()
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if _, fault := r.(interface{ Addr() uintptr }); fault {
			err = fmt.Errorf("%s: the file changed while dsx read it (truncated or rewritten by another program?): its mapped features are gone", s.name())
		} else if r != nil {
			panic(r)
		}
	}()
	f()
	return nil
}
