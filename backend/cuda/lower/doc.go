// Package lower turns the layer graph that package graph builds into the
// CUDA backend's launch plan. It is pure Go (no cgo, no build tag), so every
// decision it makes runs and is tested in `make test` on machines without a
// GPU; package dsx/backend/cuda (build tag gpu) only allocates the buffers a
// plan lists, binds their addresses and launches its steps.
//
// Lower walks the sorted nodes of Head.TrainGraph() and Head.ForwardGraph()
// and lowers each one (recognize is the one function that knows Gorgonia's
// own op types):
//
//	A × B, Aᵀ × B, A × Bᵀ       a Gemm (cuBLAS; row-major through Cᵀ = Bᵀ·Aᵀ)
//	BiasAdd(x·W, b)             fused into the softmax-cross-entropy kernel that
//	                            reads x·W when only it does; else bias_add in place
//	XentOp + its gradient       one fused kernel, gradient in place (xent_t<Tmax>
//	                            for T ≤ 4096, else xent: see XentKernel); or, with
//	                            Config.Xent = Unfused, PyTorch eager's four kernels
//	ColSum of the B×T gradient  colsum_part + colsum_fin: db
//	Σ[0] of per-row losses      xent_reduce
//	Reshape, Repeat of the      no device work (views and launch parameters)
//	constant seed, SizeOf
//
// A node it cannot lower is an error wrapping backend.ErrNotImplemented that
// names the node; the backend never does a node's work on the host. What
// the lowering runs is declared once, in Capabilities (the cuda backend's
// and its emulator's backend.Capabilities, and what dsx plan checks a
// configuration against): Lower refuses anything else first.
//
// A plan is a list of Steps, each with a Phase (before the chunks, per chunk
// of rows, after them), so that a batch larger than Config's logits budget
// runs in chunks whose logits exist one chunk at a time: the fused kernel
// writes the gradient in place, dW accumulates in the product (beta = 1) and
// db in colsum_fin, and the mean's denominator is computed over the whole
// batch first. Each kernel step fills its kernel's typed argument struct
// (package cudakernels) for a chunk; Buffers carry their size, category
// (Program.MemStats sums them into a backend.MemStats) and, for those indexed by batch row, the bytes per
// row by which a chunk's address is offset.
//
// The tests run every plan on a host emulator of the kernels (the semantics
// documented in cudakernels/*.cu) and compare the results with the float64
// reference, for every loss option, wanted gradient, dtype, matmul mode and
// chunking: a wrong buffer, offset, flag or scale fails there.
package lower
