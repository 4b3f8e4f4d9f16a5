// Package emu is a host emulator of the CUDA backend's device, registered
// as the backend "cuda-emu" (priority below the CPU's, so "auto" never
// picks it) for tests: it runs exactly the plans package lower makes and the
// runtime of package run, each kernel being its own CUDA source compiled for
// the host (package hostkern: fibers for CUDA threads, launched with the
// plan's grid, block and shared memory) and each cuBLAS product a float64
// loop. Where the host build is not to be had (no g++, DSX_HOSTKERNELS=off)
// it runs Go transliterations of the kernels instead (internal/rowmath's
// RowTerms and RowGradScaled for the xent kernels); TestHostXentKernels and
// TestHostVocabKernels then skip, saying so (make test requires the host
// build). Every launch is checked against the geometry its kernel needs and
// ptxas's sm_90 figures (registers, shared memory, __launch_bounds__);
// device memory is filled with NaN bytes; a host kernel that leaves its
// buffers faults, and the Go emulations check every pointer. Its device has
// Backend.MemoryBytes of memory (4 GiB by default; a test opens layers on
// Backend{MemoryBytes: n} for a smaller one), and it declares what the cuda
// backend does (lower.Capabilities).
//
// DryRun lowers a configuration and runs its plans on a device that
// allocates nothing and computes nothing, checking launches, grid coverage,
// extents and the 2³¹-element bound of cuBLAS operands at shapes too large
// to run (TestDryRunLargest: 32768×4096×256000).
//
// The conformance suite runs on it in `make test`, so the lowering, the
// typed kernel arguments, the runtime and the kernels' CUDA code are
// checked on machines without a GPU; what it cannot check is what only a
// GPU shows (the hardware's arithmetic and memory model, speed), which the
// cuda backend's own tests do on a GPU (scripts/gpu-check).
package emu
