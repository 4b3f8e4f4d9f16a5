//go:build gpu

// Package cuda is the GPU backend, registered as "cuda" with priority 10 in
// builds with the gpu tag (never the cuda tag: that one switches on
// Gorgonia's own CUDA VM).
//
// It runs the layer graph that package graph builds, not a separate model.
// Everything that decides what runs is pure Go and tested without a GPU:
// package lower turns the graph into a launch plan (which node becomes which
// cuBLAS product or kernel, what fuses, which buffers exist), package run is
// the layer at run time over a small Device interface, and package
// cudakernels holds the kernels' PTX and their typed argument structs. This
// package is only the Device on a real GPU: the CUDA context and kernel
// modules (cuda.go), buffers, typed kernel launches and products
// (device.go), and the cuBLAS calls through a small cgo shim (cublas.go).
// Package emu is the same Device emulated on the host, on which `make test`
// runs the conformance suite and the tests of package cudatest.
//
// Options (backend.Config; declared by lower.Capabilities, which
// Backend.Capabilities returns): MatMode FP32, TF32 (cublasSetMathMode) or
// BF16 (cublasGemmEx on bfloat16 copies made by to_bf16, float32
// products); Xent Fused or Unfused (PyTorch eager's kernels, for
// comparison); ChunkRows / MemoryBudget: a batch runs in chunks of rows
// whose logits exist one chunk at a time.
//
// Storage StorageBF16 is the mixed-precision arrangement of large-vocabulary
// training: x and dx live on the device in bfloat16, W as float32 master
// weights with a bfloat16 copy that the optimizer kernel rewrites as it
// updates W (and a to_bf16 pass remakes after SetParams), and the loss
// kernel writes the logits' gradient in float32 (db's column sum) and in
// bfloat16 (the operand of dW = xᵀ·dz and dx = dz·Wᵀ); products accumulate
// in float32 and store float32 (logits, dW) or bfloat16 (dx); the loss and
// the softmax statistics are float32 and float64. No step converts anything.
// The API stays float32: the host rounds x to bfloat16 (nearest, ties to
// even) as it copies a batch in, so half the bytes cross the bus, and widens
// dx as it copies it out; a caller whose data is bfloat16 already passes the
// widened float32 values, which round back to the same bits.
//
// VocabTile > 0 runs each row chunk's softmax-cross-entropy over vocabulary
// tiles (package lower's vocab.go, kernels in xvocab.cu): tile by tile, x·W
// for the tile, then its softmax statistics merged into each row's running
// maximum, Σ exp and smoothing sums; after the last tile the row losses;
// then the tiles again, each recomputed, for its gradient and its share of
// db, dW and dx. One rows×VocabTile tile of logits exists at a time, for
// one more x·W product per step (Cut Cross-Entropy's trade).
//
// Layers implement kit.Stats (memory by kind, the products'
// floor) and kit.Resident (a batch kept on the device).
//
// Too little device memory is an error wrapping backend.ErrOutOfMemory that
// says how much was asked and how much is free.
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
