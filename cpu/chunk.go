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
// The model (checked against BenchmarkChunkRows, bench/RESULTS.md): a
// chunk of r rows costs its products (4·r·N·T multiply-adds, 6 with dx)
// plus what does not shrink with r: each call reads W (or its transpose)
// and the dW accumulation reads and writes N×T, about 3·N·T values per
// chunk, and a few row passes over the chunk's logits (bias, max, exp,
// gradient, column sums), cheap while the chunk's rows stay in the cores'
// level-2 caches and a stream from memory when they do not. So r is the
// largest power of two whose rows — logits and their gradient (2·T values)
// and x's rows (N, and dx's N) — fit the threads' level-2 caches, but at
// least minChunkRows (below that the per-chunk reads of W and dW cost more
// than the cache saves) and at most maxChunkRows.
const (
	minChunkRows = 256
	maxChunkRows = 4096
)

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
	row := 2*int64(cfg.T) + int64(cfg.N) // logits, their gradient, x's row
	if cfg.Want.DX {
		row += int64(cfg.N)
	}
	row *= es
	fit := c.L2 * int64(max(threads, 1)) / row
	r := minChunkRows
	why := ""
	switch {
	case fit >= maxChunkRows:
		r = maxChunkRows
		why = fmt.Sprintf("the most rows a chunk takes (%d rows fit %d×%s of L2)", maxChunkRows, threads, backend.FormatBytes(c.L2))
	case fit > minChunkRows:
		r = 1 << (bits.Len64(uint64(fit)) - 1)
		why = fmt.Sprintf("the most rows (a power of two) whose logits, gradient and x (%s a row) fit %d×%s of L2", backend.FormatBytes(row), threads, backend.FormatBytes(c.L2))
	default:
		why = fmt.Sprintf("the fewest rows a chunk takes (%d; fewer would reread W and dW more than the cache saves: only %d rows of %s fit %d×%s of L2)",
			minChunkRows, fit, backend.FormatBytes(row), threads, backend.FormatBytes(c.L2))
	}
	budget := cfg.MemoryBudget
	if budget <= 0 {
		budget = backend.DefaultMemoryBudget
	}
	if lim := budget / (int64(cfg.T) * es); lim < int64(r) {
		r = int(max(lim, 1))
		why = fmt.Sprintf("MemoryBudget %s bounds the logits (%d rows)", backend.FormatBytes(budget), r)
	}
	if r >= cfg.B {
		return chunkChoice{cfg.B, fmt.Sprintf("the whole batch (%d rows): %s", cfg.B, why)}
	}
	return chunkChoice{r, fmt.Sprintf("%d rows: %s; L2 from %s", r, why, c.Source)}
}
