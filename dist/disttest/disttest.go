// Package disttest is a world of P ranks inside one process, one goroutine
// a rank, for tests of code written against dist.Comm (a layer's
// data-parallel step, the trainer) on machines without MPI. Its all-reduce
// sums in rank order, so that its results are the same from run to run.
// It is a test double, not an engine: dsx never runs a job on it.
package disttest

import (
	"errors"
	"fmt"
	"sync"

	"dsx/dist"
)

// World returns the ranks of a new world of size P; rank r's Comm is
// World(P)[r]. Every rank must call each collective, in the same order, from
// its own goroutine.
func World(P int) []dist.Comm {
	w := &world{size: P, bufs: make([]any, P)}
	w.cond = sync.NewCond(&w.mu)
	out := make([]dist.Comm, P)
	for r := range out {
		out[r] = &rank{w: w, r: r}
	}
	return out
}

type world struct {
	mu      sync.Mutex
	cond    *sync.Cond
	size    int
	gen     int   // collectives completed
	arrived int   // ranks in the current one
	bufs    []any // each rank's buffer in the current one
	root    int
	err     error // the current one's mismatch, for every rank
	aborted int   // 1 + the rank that aborted, 0 while none has
}

type rank struct {
	w *world
	r int
}

func (c *rank) Rank() int      { return c.r }
func (c *rank) Size() int      { return c.w.size }
func (c *rank) LocalRank() int { return c.r }
func (c *rank) LocalSize() int { return c.w.size }
func (c *rank) Engine() string { return fmt.Sprintf("disttest: an in-process world of %d", c.w.size) }

func (c *rank) AllReduceF32(buf []float32) error { return c.w.collective(c.r, buf, 0) }
func (c *rank) AllReduceF64(buf []float64) error { return c.w.collective(c.r, buf, 0) }
func (c *rank) Broadcast(buf []byte, root int) error {
	if root < 0 || root >= c.w.size {
		return fmt.Errorf("disttest: broadcast from rank %d of %d", root, c.w.size)
	}
	return c.w.collective(c.r, buf, root)
}
func (c *rank) Barrier() error { return c.w.collective(c.r, nil, 0) }
func (c *rank) Close() error   { return nil }

// Abort ends the world: every collective, waiting or to come, fails
// naming the rank.
func (c *rank) Abort(code int) {
	c.w.mu.Lock()
	if c.w.aborted == 0 {
		c.w.aborted = c.r + 1
	}
	c.w.cond.Broadcast()
	c.w.mu.Unlock()
}

// collective waits for every rank's buffer; the last to arrive combines
// them (sum in rank order, or root's bytes) into every buffer.
func (w *world) collective(r int, buf any, root int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aborted != 0 {
		return w.abortErr()
	}
	gen := w.gen
	w.bufs[r] = buf
	if _, ok := buf.([]byte); ok {
		w.root = root
	}
	w.arrived++
	if w.arrived < w.size {
		for w.gen == gen && w.aborted == 0 {
			w.cond.Wait()
		}
		if w.gen == gen {
			return w.abortErr()
		}
		return w.err
	}
	w.err = combine(w.bufs, w.root)
	w.arrived = 0
	w.gen++
	clear(w.bufs)
	w.cond.Broadcast()
	return w.err
}

func (w *world) abortErr() error {
	return fmt.Errorf("disttest: rank %d aborted the job", w.aborted-1)
}

func combine(bufs []any, root int) error {
	switch b0 := bufs[0].(type) {
	case nil:
		for _, b := range bufs {
			if b != nil {
				return errors.New("disttest: ranks called different collectives")
			}
		}
	case []float32:
		return sum(b0, bufs)
	case []float64:
		return sum(b0, bufs)
	case []byte:
		src, ok := bufs[root].([]byte)
		if !ok || len(src) != len(b0) {
			return errors.New("disttest: broadcast buffers differ between ranks")
		}
		for _, b := range bufs {
			b, ok := b.([]byte)
			if !ok || len(b) != len(src) {
				return errors.New("disttest: broadcast buffers differ between ranks")
			}
			copy(b, src)
		}
	}
	return nil
}

func sum[F float32 | float64](b0 []F, bufs []any) error {
	all := make([][]F, len(bufs))
	for r, b := range bufs {
		f, ok := b.([]F)
		if !ok || len(f) != len(b0) {
			return fmt.Errorf("disttest: rank %d all-reduces %T of %d, rank 0 %T of %d", r, b, lenOf(b), b0, len(b0))
		}
		all[r] = f
	}
	acc := make([]F, len(b0))
	for _, f := range all {
		for i, v := range f {
			acc[i] += v
		}
	}
	for _, f := range all {
		copy(f, acc)
	}
	return nil
}

func lenOf(b any) int {
	switch b := b.(type) {
	case []float32:
		return len(b)
	case []float64:
		return len(b)
	case []byte:
		return len(b)
	}
	return 0
}

// Each runs f(r) for every rank r of P at once, each in its own goroutine
// (as World's ranks must run), and returns their errors joined, each
// prefixed with its rank.
func Each(P int, f func(r int) error) error {
	errs := make([]error, P)
	var wg sync.WaitGroup
	for r := range P {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(r); err != nil {
				errs[r] = fmt.Errorf("rank %d: %w", r, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
