// Package nccl is NVIDIA's collective library for device memory
// (libnccl.so.2), loaded at run time with dlopen so that the gpu build
// links no NCCL and runs where it is absent (the CUDA backend then reduces
// through host copies). It binds the few calls a data-parallel layer needs:
// a unique id made on rank 0 and broadcast over the job's dist.Comm (MPI,
// as llm.c does), ncclCommInitRank with one GPU per rank, and in-place
// all-reduces (sum) of float32 and float64 device buffers on a stream.
//
// ncclCommInitRank takes its 128-byte id by value, which purego cannot pass
// (it has 9 stack slots on amd64), hence a small cgo shim; nothing else
// here needs the CUDA headers, so the package's tests run without a GPU
// against a stand-in library built from testdata (make check-gpu-build).
//
// Everything but this comment is in the gpu build (tag gpu, with cgo).
package nccl
