// Package emu is a host emulator of the CUDA backend's device, registered
// as the backend "cuda-emu" (priority below the CPU's, so "auto" never
// picks it) for tests: it runs exactly the plans package lower makes and the
// runtime of package run, with each kernel replaced by its documented
// arithmetic (cudakernels/*.cu; the xent kernels by internal/rowmath's
// RowLoss and RowGrad, which they implement) and each cuBLAS product by a float64
// loop. Every pointer a kernel receives is checked against its buffer's
// bounds, every launch against the geometry its kernel needs, and fresh
// device memory is filled with NaN bytes. Its device has
// Backend.MemoryBytes of memory (4 GiB by default; a test opens layers on
// Backend{MemoryBytes: n} for a smaller one), and it declares what the cuda
// backend does (lower.Capabilities).
//
// The conformance suite runs on it in `make test`, so the lowering, the
// typed kernel arguments and the runtime are checked on machines without a
// GPU; what it cannot check is the kernels' CUDA code itself, which the cuda
// backend's own tests do on a GPU (cudakernels' kernel tests against
// rowmath.RowLoss and rowmath.RowGrad).
package emu
