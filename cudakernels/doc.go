// Package cudakernels holds the CUDA C sources of the GPU backend's kernels,
// the PTX compiled from them (embedded into the binary), and the typed Go
// argument struct of every kernel (args.go).
//
//   - xent.cu: fused softmax + cross-entropy, forward and gradient in place
//     (every option of graph.LossOptions), plus the mean's denominator and
//     the loss reduction, so that only a scalar loss crosses the bus.
//   - bias.cu: the bias add into the logits, the column sum db, and the
//     bfloat16 copies of product operands.
//   - optim.cu: SGD with momentum, Adam and AdamW, with weight decay.
//   - unfused.cu: softmax-cross-entropy as PyTorch eager runs it
//     (log_softmax, nll and their gradients), the reference the fused kernel
//     is measured against.
//
// Each .cu file opens with what it fuses and what it never stores, and names
// the shape of every pointer. Kernels lists every entry point with its module
// and argument struct; TestSignatures parses the extern "C" __global__
// declarations and the flag macros of the .cu files and checks them against
// those structs and the Xent* constants, so a kernel's parameters cannot
// drift from the Go side unnoticed. `make kernels` (gen.sh) compiles the
// sources with CUDA 11.8's nvcc to PTX for compute_52 (.version 7.8), which
// drivers ≥ 520 load and JIT-compile for the GPU at hand, and records each
// source's SHA-256 in kernels.sha256; TestKernelsUpToDate fails when a .cu
// file changed without regenerating.
//
// This package is pure Go (no cgo, no build tag): it only carries bytes and
// types. The backend that loads them is dsx/backend/cuda (build tag gpu).
package cudakernels
