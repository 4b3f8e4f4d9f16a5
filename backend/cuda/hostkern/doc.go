// Package hostkern compiles the CUDA kernels of package cudakernels — their
// own .cu source, unchanged but for the declarations of shared memory — with
// the host's C++ compiler (g++) against a small shim of CUDA's programming
// model (cudakernels/host/cudashim.h: a fiber per CUDA thread, block
// barriers, warp exchanges in lockstep, NaN-filled shared memory), and runs
// them in a separate process, the harness (cudakernels/host/harness.cc),
// on buffers shared with the Go process. It needs no cgo: the tests stay
// CGO_ENABLED=0.
//
// Build compiles the harness once per process and caches it by the hash of
// its sources, flags and compiler under the user's cache directory, so
// later test binaries find it built. An Arena holds one layer's device
// buffers in a shared memory file; the harness maps each at its device
// address ((i+1)·2³²) so that the kernels receive the very pointers the
// lowering computed, with nothing mapped past each buffer: a kernel that
// reads or writes outside its buffers faults, and the harness names the
// kernel, block, thread, buffer and byte. Launch runs one kernel with the
// grid, block and dynamic shared memory of a launch and its typed argument
// struct.
//
// The emulator (package emu) runs every kernel step this way when the
// harness builds, so the conformance suite and every lowering test run the
// kernels' own code; cudatest's kernel tests compare it with the float64
// reference. Environment: DSX_HOSTKERNELS=tsan builds with ThreadSanitizer
// (a missing __syncthreads is a data race, `make test-kernels-tsan`), =off
// not at all; DSX_SHIM_ORDER=reverse runs each block's threads in reverse
// order; DSX_REQUIRE_HOSTKERNELS=1 (make test) turns a skip for want of g++
// into a failure; CXX names another compiler.
package hostkern
