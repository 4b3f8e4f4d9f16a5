package lower

import (
	"fmt"
	"strings"
)

// CacheBytes is the longest row the block-per-row xent kernel caches in
// shared memory (with its ~1 KiB of static shared memory it stays under the
// 48 KiB default).
const CacheBytes = 40 << 10

// XentTile is the tiled kernel for rows of T classes: xent_t<tmax> holds a
// row in the registers of threads threads (one warp to eight), with a block
// of block threads; tmax = 0 when T > 4096: then the block-per-row kernel
// xent runs.
func XentTile(T int) (tmax, threads, block int) {
	for tmax = 32; tmax <= 4096; tmax *= 2 {
		if T <= tmax {
			threads = max(32, tmax/16) // 16 columns a thread from 512 up
			if threads == 32 {
				return tmax, 32, 64 // two rows (warps) a block
			}
			return tmax, threads, threads
		}
	}
	return 0, 0, 0
}

// XentKernel names the fused kernel for rows of T classes and its launch
// for rows rows; rowCache is set when the block-per-row kernel caches the row
// in shared memory (T·esize ≤ CacheBytes; the tiled kernels ignore it).
// Soft-capped logits always take the block-per-row kernel: the tiled ones
// have no tanh (their registers are spoken for; caps serve large
// vocabularies, which take xent anyway).
func XentKernel(T int, f32, rowCache, softcap bool, esize int64, rows int) (name string, d Dims) {
	if tmax, threads, block := XentTile(T); tmax > 0 && !softcap {
		perBlock := block / threads
		return fmt.Sprintf("xent_t%d%s", tmax, suffix(f32)), Dims{GridX: ceilDiv(rows, perBlock), GridY: 1, BlockX: block, BlockY: 1}
	}
	d = Dims{GridX: rows, GridY: 1, BlockX: RowThreads(T), BlockY: 1}
	if rowCache {
		d.Shmem = T * int(esize)
	}
	return "xent" + suffix(f32), d
}

// RowThreads is the block of a block-per-row kernel: a warp per 32 columns,
// 32 to 512 threads.
func RowThreads(T int) int { return min(512, max(32, ceilDiv(T, 32)*32)) }

// ColSumSlabs is the number of row slabs colsum_part sums in parallel:
// enough blocks to fill the GPU, at least 8 rows a slab, at most 64 slabs.
func ColSumSlabs(T, rows int) int {
	return max(1, min(64, ceilDiv(2048, ceilDiv(T, 32)), ceilDiv(rows, 8)))
}

func suffix(f32 bool) string {
	if f32 {
		return "_f32"
	}
	return "_f64"
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// The launches of the kernels a plan runs, for the kernel tests (package
// cudatest), which launch them one by one as the plan's steps do.

// ReduceDims is xent_scale's and xent_reduce's launch: one block of 1024
// threads.
var ReduceDims = Dims{GridX: 1, GridY: 1, BlockX: 1024, BlockY: 1}

// VocabStatsDims is xvocab_stats' launch over a tile of cols columns: a
// block per row.
func VocabStatsDims(rows, cols int) Dims {
	return Dims{GridX: rows, GridY: 1, BlockX: RowThreads(cols), BlockY: 1}
}

// VocabFinishDims is xvocab_finish's launch: a thread per row.
func VocabFinishDims(rows int) Dims {
	return Dims{GridX: ceilDiv(rows, 256), GridY: 1, BlockX: 256, BlockY: 1}
}

// VocabGradDims is xvocab_grad's launch over a tile of cols columns (of
// tiles vt wide): 256 columns a block, and, when it sums the columns for db,
// as many row slabs as colsum_fin adds (ColSumSlabs(vt, rows)).
func VocabGradDims(rows, cols, vt int, colsums bool) Dims {
	slabs := min(rows, 65535)
	if colsums {
		slabs = ColSumSlabs(vt, rows)
	}
	return Dims{GridX: ceilDiv(cols, 256), GridY: slabs, BlockX: 256, BlockY: 1}
}

// ColSumFinDims is colsum_fin's launch over cols columns.
func ColSumFinDims(cols int) Dims {
	return Dims{GridX: ceilDiv(cols, 64), GridY: 1, BlockX: 64, BlockY: 1}
}

// MaxLaunch is the largest block (threads) and dynamic shared memory
// (bytes) with which a plan launches kernel name, from the steps' own Dims
// at sizes past every limit (lower's TestKernelResources checks them against
// ptxas's figures); ok is false for a kernel no step launches.
func MaxLaunch(name string) (threads, shmem int, ok bool) {
	const big = 1 << 20
	c := Ctx{Rows: big, Cols: big}
	f32 := strings.HasSuffix(name, "_f32")
	base := strings.TrimSuffix(strings.TrimSuffix(name, "_f32"), "_f64")
	var d Dims
	switch base {
	case "xent_scale", "xent_reduce":
		d = ReduceDims
	case "xent":
		esize := int64(8)
		if f32 {
			esize = 4
		}
		// The most threads (rows past 16,384 classes) and the most shared
		// memory (the longest row it caches).
		_, d = XentKernel(big, f32, false, true, esize, 1)
		d.Shmem = CacheBytes
	case "xvocab_stats":
		d = VocabStatsDims(1, big)
	case "xvocab_finish":
		d = VocabFinishDims(big)
	case "xvocab_grad":
		d = VocabGradDims(big, big, big, true)
	case "colsum_fin":
		d = ColSumFinDims(big)
	case "colsum_part":
		d = (&colSumPart{T: big}).Dims(c)
	case "bias_add":
		d = (&biasAdd{T: big}).Dims(c)
	case "to_bf16":
		d = (&toBF16{total: big}).Dims(c)
	case "sgd", "adam":
		d = (&optimStep{elements: big}).Dims(c)
	case "log_softmax":
		d = (&logSoftmax{T: big}).Dims(c)
	case "log_softmax_grad":
		d = (&logSoftmaxGrad{T: big}).Dims(c)
	case "nll":
		d = (&nll{T: big}).Dims(c)
	case "nll_grad":
		d = (&nllGrad{T: big}).Dims(c)
	default:
		var tmax int
		if _, err := fmt.Sscanf(base, "xent_t%d", &tmax); err != nil {
			return 0, 0, false
		}
		if t, _, block := XentTile(tmax); t != tmax {
			return 0, 0, false
		} else {
			d = Dims{BlockX: block, BlockY: 1}
		}
	}
	return d.BlockX * d.BlockY, d.Shmem, true
}
