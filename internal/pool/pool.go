// Package pool is the project's persistent worker pool: Parallel splits an
// index range into contiguous chunks run on GOMAXPROCS−1 long-lived workers
// and the caller, allocating nothing once warm (the CPU backend's products
// and the graph's fused op split their rows with it).
package pool

import (
	"runtime"
	"sync"
)

// RangeTask is work over an index range [lo, hi) that may be split into
// contiguous chunks run concurrently. Implementations are usually pointers to
// long-lived structs (an op, a scratch buffer), so that handing one to
// Parallel allocates nothing.
type RangeTask interface{ RunRange(lo, hi int) }

// job is one chunk handed to a pool worker.
type job struct {
	t      RangeTask
	lo, hi int
	wg     *sync.WaitGroup
}

var (
	poolOnce sync.Once
	poolJobs chan job
	wgPool   = sync.Pool{New: func() any { return new(sync.WaitGroup) }}
)

// startPool starts GOMAXPROCS−1 persistent workers (the caller of Parallel
// runs the first chunk itself). Workers block on a channel between calls, so
// they cost nothing while idle and spawn nothing per call.
func startPool() {
	n := runtime.GOMAXPROCS(0) - 1
	if n < 1 {
		n = 1
	}
	poolJobs = make(chan job, 4*n)
	for i := 0; i < n; i++ {
		go func() {
			for j := range poolJobs {
				j.t.RunRange(j.lo, j.hi)
				j.wg.Done()
			}
		}()
	}
}

// Chunks is the number of contiguous chunks Parallel splits n items into when
// each chunk should hold at least grain items: at most GOMAXPROCS, at least 1.
func Chunks(n, grain int) int {
	p := runtime.GOMAXPROCS(0)
	if grain < 1 {
		grain = 1
	}
	if c := n / grain; c < p {
		p = c
	}
	if p < 1 {
		p = 1
	}
	return p
}

// Parallel runs t over [0, n) in Chunks(n, grain) contiguous chunks: one on
// the calling goroutine, the others on the persistent worker pool. It returns
// when every chunk is done. It allocates nothing once warm. When the pool is
// busy (concurrent callers), chunks run on the caller instead of waiting.
func Parallel(n, grain int, t RangeTask) {
	c := Chunks(n, grain)
	ParallelChunks(n, c, t)
}

// ParallelChunks is Parallel with an explicit chunk count c (≥ 1).
func ParallelChunks(n, c int, t RangeTask) {
	if c <= 1 || n <= 1 {
		t.RunRange(0, n)
		return
	}
	if c > n {
		c = n
	}
	poolOnce.Do(startPool)
	wg := wgPool.Get().(*sync.WaitGroup)
	for w := 1; w < c; w++ {
		lo, hi := n*w/c, n*(w+1)/c
		wg.Add(1)
		select {
		case poolJobs <- job{t, lo, hi, wg}:
		default:
			t.RunRange(lo, hi)
			wg.Done()
		}
	}
	t.RunRange(0, n/c)
	wg.Wait()
	wgPool.Put(wg)
}
