// Package cudakernels holds the CUDA C sources of the GPU backend's kernels,
// the PTX compiled from them (embedded into the binary), and the typed Go
// argument struct of every kernel (args.go).
//
// Sources, one PTX module each:
//   - xent.cu: fused softmax + cross-entropy, forward and gradient in place
//     (every option of graph.LossOptions), plus the mean's denominator and
//     the loss reduction, so that only a scalar loss crosses the bus.
//   - xvocab.cu: the same loss over vocabulary tiles (Config.VocabTile), for
//     layers whose rows×T logits must never exist: running softmax
//     statistics per tile, the row losses, then each tile's gradient and its
//     share of db.
//   - bias.cu: the bias add into the logits, the column sum db, and the
//     bfloat16 copies of product operands.
//   - optim.cu: SGD with momentum, Adam and AdamW, with weight decay.
//   - unfused.cu: softmax-cross-entropy as PyTorch eager runs it
//     (log_softmax, nll and their gradients), the reference the fused kernel
//     is measured against.
//
// Headers the sources include (no kernels of their own):
//   - xent_row.cuh: the loss kernels' flags (XENT_*), label decode, target
//     coefficients and per-row loss and gradient arithmetic.
//   - xent_acc.cuh: a row's running softmax statistics (max, Σ exp, the
//     target sums) and their merge across threads, warps and tiles.
//   - bf16.cuh: float32 → bfloat16 rounding.
//
// The scalar parts of both xent headers also compile for the host:
// TestRowMath and TestAccMerge build them with g++ (testdata/rowmath.cc)
// and check them against package graph's float64 reference and the
// statistics' definitions, without a GPU. Every kernel compiles for the
// host too, whole: host/cudashim.h is a small CUDA runtime on fibers and
// host/harness.cc the program that runs them (package
// dsx/backend/cuda/hostkern builds both; Sources embeds them).
//
// Each .cu file opens with what it fuses and what it never stores, and names
// the shape of every pointer. Kernels lists every entry point with its module
// and argument struct; TestSignatures parses the extern "C" __global__
// declarations of the .cu files and the flag macros of the sources and
// headers and checks them against those structs and the Xent* constants, so
// a kernel's parameters cannot drift from the Go side unnoticed. `make
// kernels` (gen.sh) compiles the sources with CUDA 11.8's nvcc to PTX for
// compute_52 (.version 7.8), which drivers ≥ 520 load and JIT-compile for the
// GPU at hand, and records the SHA-256 of each source and header in
// kernels.sha256; TestKernelsUpToDate fails when one changed without
// regenerating. gen.sh also records what ptxas -arch=sm_90 -v makes of
// every entry (resources.sm_90.txt: registers, spills, static shared
// memory; KernelResources, CheckLaunch), and TestPTXRegenerates reruns it
// on a copy with nvcc 11.8 and wants every output byte for byte.
// TestPTXEntries checks the .entry parameters of the embedded PTX (count,
// order, width, kind) against the argument structs.
//
// This package is pure Go (no cgo, no build tag): it only carries bytes and
// types. The backend that loads them is dsx/backend/cuda (build tag gpu).
package cudakernels
