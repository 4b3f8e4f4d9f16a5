// Package run is the CUDA backend's layer at run time, independent of how
// the device is driven: Open lowers a layer (package lower), allocates its
// buffers on a Device, binds the plan's steps, and implements backend.Layer,
// kit.Stats and kit.Resident on top (batch checks and upload,
// Compute, Step with the optimizer's kernels, Logits, memory statistics, the
// products' floor).
//
// Package dsx/backend/cuda (build tag gpu) is the Device on a real GPU
// through gorgonia.org/cu and cuBLAS; package dsx/backend/cuda/emu is a host
// emulator of the same Device that the conformance suite runs in `make
// test`, so that this package and the lowering are exercised on every
// machine.
//
// A data-parallel layer (Config.Comm; parallel.go) writes the global
// batch's reduction scales over the plan's own, and all-reduces dW and db
// on the device where every rank's device can (Collectives: NCCL on a GPU,
// one GPU per rank) or else through one host copy over the communicator.
//
// Parameters and optimizer state stay on the device; Params and
// OptimizerState copy them to the host (for a model or a checkpoint), and
// SetParams and SetOptimizerState back. Buffers for the largest
// batch B are allocated once by Open; a step copies the batch in and the
// scalar loss out, and allocates no device memory. Close frees it all.
package run
