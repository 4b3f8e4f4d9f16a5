package cpu

import (
	"fmt"
	"math/bits"
	"runtime"

	"dsx/backend"
)

// The CPU backend picks the rows of a training batch's chunks for speed
// (Config.ChunkRows = 0), with MemoryBudget a ceiling on the chunk's
// logits; the CUDA backend keeps Config.Chunk's rule (chunk only when the
// logits exceed the budget).
//
// The model (checked against BenchmarkChunkRows, bench/RESULTS.md): a chunk
// of r rows costs its products (4·r·N·T multiply-adds, 6 with dx), a few
// passes over its r×T logits (the bias fill, max, exp, gradient, column
// sums), and, whatever r is, one read of W for x_c·W (and one of Wᵀ for dx)
// and a read and write of dW for its accumulation: about 3·N·T values a
// chunk. Two regimes follow:
//
//   - W small (W and dW, N·T values each, fit half the threads' level-2
//     caches): the per-chunk reads of W and dW come from cache and cost
//     little, so r is the largest power of two whose rows — logits and their
//     gradient (2·T values) and x's rows (N, and dx's N) — fit the threads'
//     level-2 caches: the passes over the logits and the second read of x_c
//     (for x_cᵀ·dz) hit the cache. (T = 10 and 100 at N = 784…1024.)
//   - W large: the reads of W and dW stream from memory once per chunk,
//     about 3/(4·r)·(F/BW) of the products' time (F the products' flop rate,
//     BW the memory bandwidth: 1.5–4 % at 2048 rows on this project's
//     machine) while the logits' passes cost the same per row whatever r
//     is once they miss the cache: r = largeChunkRows, so that the rereads
//     stay a few per cent.
//
// Measured in CPU time at B = 4096, N = 1024 (bench/RESULTS.md), 128-row
// chunks were 10–50 % slower than 2048-row ones at T ≥ 1000 and the whole
// batch within a few per cent of 2048 rows; chunks that fit the cache were
// a few per cent faster than the whole batch at T = 10 and 100.
const largeChunkRows = 2048

// chunkChoice is the rows per chunk of a layer's training batches and why.
type chunkChoice struct {
	Rows int
	Why  string
}

// chunkRows picks the rows per chunk for cfg: Config.ChunkRows when set,
// else the model above.
func chunkRows(cfg backend.Config) chunkChoice {
	switch {
	case cfg.ChunkRows > 0:
		r := min(cfg.ChunkRows, cfg.B)
		return chunkChoice{r, fmt.Sprintf("%d rows: Config.ChunkRows", r)}
	case cfg.ChunkRows < 0:
		return chunkChoice{cfg.B, "the whole batch: Config.ChunkRows = -1 (never chunk)"}
	}
	return speedChunk(cfg, hostCache(), ruleThreads())
}

// ruleThreads is the number of cores whose caches a chunk may fill: the Go
// workers a product is split over with a system BLAS; 1 with gonum's GEMM,
// so that without a system BLAS the chunks (and so the results, bit for
// bit) do not depend on GOMAXPROCS.
func ruleThreads() int {
	if sysBLAS() == nil {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// speedChunk is the model's choice for cfg with the given cache and threads.
func speedChunk(cfg backend.Config, c cacheInfo, threads int) chunkChoice {
	es := int64(cfg.DType.Size())
	l2 := c.L2 * int64(max(threads, 1))
	caches := fmt.Sprintf("%d×%s of L2 from %s", max(threads, 1), backend.FormatBytes(c.L2), c.Source)
	w := int64(cfg.N) * int64(cfg.T) * es
	var r int64
	var why string
	if w <= l2/2 {
		row := 2*int64(cfg.T) + int64(cfg.N) // logits, their gradient, x's row
		if cfg.Want.DX {
			row += int64(cfg.N)
		}
		row *= es
		r = max(1, l2/row)
		r = 1 << (bits.Len64(uint64(r)) - 1)
		why = fmt.Sprintf("W (%s) fits the cache: the most rows (a power of two) whose logits, gradient and x (%s a row) fit %s",
			backend.FormatBytes(w), backend.FormatBytes(row), caches)
	} else {
		r = largeChunkRows
		why = fmt.Sprintf("W (%s) does not fit half of %s: every chunk rereads W and dW from memory, so chunks are large (%d rows)",
			backend.FormatBytes(w), caches, largeChunkRows)
	}
	budget := cfg.MemoryBudget
	if budget <= 0 {
		budget = backend.DefaultMemoryBudget
	}
	if lim := budget / (int64(cfg.T) * es); lim < r {
		r = max(lim, 1)
		why = fmt.Sprintf("MemoryBudget %s bounds the logits to %d rows", backend.FormatBytes(budget), r)
	}
	if r >= int64(cfg.B) {
		return chunkChoice{cfg.B, fmt.Sprintf("the whole batch (%d rows): %s", cfg.B, why)}
	}
	return chunkChoice{int(r), fmt.Sprintf("%d rows: %s", r, why)}
}
