//go:build gpu

// Package cuda is the GPU backend, registered as "cuda" with priority 10 in
// builds with the gpu tag (never the cuda tag: that one switches on
// Gorgonia's own CUDA VM).
//
// It runs the layer graph that package graph builds, not a separate model:
// Open walks the sorted nodes of Layer.TrainGraph() and Layer.ForwardGraph()
// and lowers each one to device work, producing a fixed launch plan:
//
//	A × B, Aᵀ × B, A × Bᵀ       cuBLAS gemm (row-major through Cᵀ = Bᵀ·Aᵀ)
//	BiasAdd(x·W, b)             fused into the softmax-cross-entropy kernel that
//	                            reads x·W when only it does; else bias_add in place (bias.cu)
//	SoftmaxXent + its gradient  one fused kernel, gradient in place (xent.cu):
//	                            for T ≤ 4096 the row in the registers of 1–8
//	                            warps (xent_t<Tmax>); else a block per row (xent)
//	ColSum of the B×T gradient  colsum_part + colsum_fin (bias.cu): db
//	Σ[0] of per-row losses      xent_reduce (xent.cu)
//	Reshape, Repeat of the      no device work (views and launch parameters)
//	constant seed, SizeOf
//
// A node it cannot lower makes Open fail with an error wrapping
// backend.ErrNotImplemented that names the node; the backend never does a
// node's work on the CPU. (The host only validates the batch with
// backend.CheckBatch and graph.CheckTargets, as every backend does, so that
// bad input gets the same error everywhere.)
//
// Options (backend.Config): MatMode fp32, tf32 (cublasSetMathMode) or bf16
// (cublasGemmEx on bfloat16 copies made by to_bf16, float32 products); Xent
// fused or unfused (unfused.cu: log_softmax, nll, nll_grad, log_softmax_grad,
// PyTorch eager's kernels); ChunkRows / MemoryBudget: the plan's steps have a
// phase (before the chunks, per chunk, after), so a batch runs in chunks of
// rows whose logits exist one chunk at a time, the fused kernel writing the
// gradient in place, dW accumulated by the product (beta = 1, float32) and db
// by colsum, with the mean's denominator computed over the whole batch first.
// Layers implement backend.Stats (memory by kind, the products' floor) and
// backend.Resident (a batch kept on the device).
//
// Parameters and optimizer state stay on the device; the optimizers run as
// kernels (optim.cu). Buffers for the largest batch B are allocated once by
// Open; a step copies the batch in and the scalar loss out, and allocates no
// device memory. Close frees it all. Too little device memory is an error
// wrapping backend.ErrOutOfMemory that says how much was asked and how much
// is free.
//
// All work goes to the context's default stream, in order: gorgonia.org/cu's
// cuBLAS wrapper has no way to set a handle's stream, so kernels share the
// stream cuBLAS uses. One primary context per process; layers share it, the
// kernel modules and the cuBLAS handle, and a mutex serialises their use.
//
// The binary that links this package needs libcuda.so.1 to even start, and
// gorgonia.org/cu's init exits the process when cuInit fails: a program that
// must run without a GPU uses the pure-Go build and package
// dsx/backend/gpuprobe to decide whether to hand over to the gpu build.
package cuda
