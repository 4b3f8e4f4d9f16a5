package cpu

import (
	"fmt"

	"dsx/backend"
	"dsx/backend/kit"
)

// The CPU backend picks the rows of a training batch's chunks for speed
// (Config.ChunkRows = 0), with MemoryBudget a ceiling on the chunk's
// logits; the CUDA backend keeps Config.Chunk's rule (chunk only when the
// logits exceed the budget).
//
// What a chunk of r rows costs beyond its products (4·r·N·T multiply-adds,
// 6 with dx) was measured (BenchmarkChunkRows, bench/run-cpu.sh's whole
// column; bench/RESULTS.md): at T = 10 and 100 chunks that fit the level-2
// caches were 0–20 % slower than the whole batch (more parallel regions,
// the loss's row passes split over fewer rows), and at T ≥ 1000 chunks
// under about 512 rows cost 10–50 % more CPU time, with no gain from 512
// rows up to the whole batch. The BLAS blocks a product's inner dimension
// (a few hundred) and rereads C, and packs op(B), once a block anyway, so
// a chunk of r rows adds one read of W for x_c·W (and one of Wᵀ for dx) per
// chunk, a few per cent at r ≥ 512, and below the block size rereads of dW
// as well. The passes over a chunk's logits (bias fill, max, exp,
// gradient, column sums) cost the same per row whether they hit this
// machine's caches or not. So the rule chunks for memory, in chunks large
// enough to cost little:
//
//   - the whole batch while its logits and their gradient (2·B·T values)
//     fit the last-level cache (read from /sys/devices/system/cpu/cpu0/cache;
//     8 MiB assumed where there is none to read);
//   - else chunks of N rows, at least minChunkRows (so that the dW product's
//     inner blocks stay whole) and at most maxChunkRows (past which the
//     per-chunk read of W is below 1.5 %): the chunk's two r×T buffers then
//     hold no more than W and dW do (2·N·T values).
//
// The split over the worker pool divides each product along N or T (and
// the row passes into parts of the chunk), never changing a product's
// inner dimension, so the rule does not depend on the number of threads,
// and results (which depend on the chunks) do not depend on GOMAXPROCS
// where they did not before.
const (
	minChunkRows = 512
	maxChunkRows = 2048
)

// chunkChoice is the rows per chunk of a layer's training batches and why.
type chunkChoice struct {
	Rows int
	Why  string
}

// chunkRows picks the rows per chunk for cfg: Config.ChunkRows when set,
// else the rule above.
func chunkRows(cfg backend.Config) chunkChoice {
	switch {
	case cfg.ChunkRows > 0:
		r := min(cfg.ChunkRows, cfg.B)
		return chunkChoice{r, fmt.Sprintf("%d rows: Config.ChunkRows", r)}
	case cfg.ChunkRows < 0:
		return chunkChoice{cfg.B, "the whole batch: Config.ChunkRows = -1 (never chunk)"}
	}
	return speedChunk(cfg, hostCache())
}

// speedChunk is the rule's choice for cfg with the given cache.
func speedChunk(cfg backend.Config, c cacheInfo) chunkChoice {
	es := int64(cfg.DType.Size())
	B, N, T := int64(cfg.B), int64(cfg.N), int64(cfg.T)
	llc := fmt.Sprintf("the %s L%d cache (%s)", kit.FormatBytes(c.LLC), c.Level, c.Source)
	if c.Level == 0 {
		llc = fmt.Sprintf("a last-level cache of %s, %s", kit.FormatBytes(c.LLC), c.Source)
	}
	r := B
	why := ""
	if whole := 2 * B * T * es; whole <= c.LLC || B <= minChunkRows {
		why = fmt.Sprintf("the logits and their gradient (%s) fit %s", kit.FormatBytes(whole), llc)
		if B <= minChunkRows {
			why = fmt.Sprintf("no more rows than the smallest chunk (%d)", minChunkRows)
		}
	} else {
		r = min(max(N, minChunkRows), maxChunkRows)
		why = fmt.Sprintf("the logits and their gradient (%s) exceed %s: chunks of N rows within [%d, %d], whose two chunk×T buffers hold no more than W and dW",
			kit.FormatBytes(whole), llc, minChunkRows, maxChunkRows)
	}
	budget := cfg.MemoryBudget
	if budget <= 0 {
		budget = backend.DefaultMemoryBudget
	}
	if lim := budget / (T * es); lim < min(r, B) {
		r = max(lim, 1)
		why = fmt.Sprintf("MemoryBudget %s bounds the logits to %d rows", kit.FormatBytes(budget), r)
	}
	if r >= B {
		return chunkChoice{cfg.B, "the whole batch: " + why}
	}
	return chunkChoice{int(r), fmt.Sprintf("%d rows: %s", r, why)}
}
