// Package cudakernels holds the CUDA C sources of the GPU backend's kernels
// and the PTX compiled from them, embedded into the binary.
//
//   - xent.cu: fused softmax + cross-entropy, forward and gradient in place
//     (every option of graph.LossOptions), plus the mean-denominator and the
//     loss reduction, so that only a scalar loss crosses the bus.
//   - bias.cu: the bias broadcast-add into the logits and the column sum db.
//   - optim.cu: SGD with momentum, Adam and AdamW, with weight decay.
//
// Each .cu file opens with what it fuses and what it never stores, and names
// the shape of every pointer. `make kernels` (gen.sh) compiles them with
// CUDA 11.8's nvcc to PTX for compute_52 (.version 7.8), which drivers ≥ 520
// load and JIT-compile for the GPU at hand, and records each source's SHA-256
// in kernels.sha256; TestKernelsUpToDate fails when a .cu file changed without
// regenerating.
//
// This package is pure Go (no cgo, no build tag): it only carries bytes. The
// backend that loads them is dsx/backend/cuda (build tag gpu).
package cudakernels
