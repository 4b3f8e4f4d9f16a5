// Package backend is the small interface every device implements to run the
// classifier layer built by package graph, and the registry that picks one at
// run time.
//
// A Backend opens Layers. A Layer owns the parameters W (N×T) and b (T), the
// optimizer state and every buffer for its shape, so that a training step
// allocates nothing; Close frees them (on a GPU, device memory). Params and
// OptimizerState copy the parameters and the optimizer's state (PyTorch's
// buffers under PyTorch's names, and the step count) to the host, and
// SetParams then SetOptimizerState restore them: a checkpoint resumes to
// the same bits as the run it was taken from.
//
// Backends register themselves from an init function: a program links one
// in by importing its package (import _ "dsx/cpu"; the CUDA backend,
// dsx/backend/cuda, in builds with the gpu tag), and Get and Choose say
// which import is missing when one is not. Choose("auto") — or the
// DSX_DEVICE environment variable — picks the registered backend of highest
// priority that reports itself available; a backend that is not available
// returns an error wrapping ErrUnavailable that says why.
//
// Configuration is by typed values (MatMode, XentImpl, Storage,
// OptimizerKind; each has String and a Parse function for command lines),
// and each backend declares what it runs beyond the defaults
// (Backend.Capabilities: dtypes, matmul modes, storages, the
// softmax-cross-entropy implementations and their loss options, chunking,
// vocabulary tiles), so that a caller learns what is supported without
// trying. Open refuses anything else with an error wrapping
// ErrNotImplemented (Capabilities.Check), and only that error makes a
// caller fall back to another path.
//
// Bad input is refused before it can cost anything: graph.Spec.Validate
// checks that no matrix size overflows; Open estimates what the layer will
// allocate and fails with an error wrapping ErrOutOfMemory when it will not
// fit; SetParams refuses NaN and ±Inf; a batch whose logits are not finite
// is an error wrapping ErrNonFinite that says whether x or the parameters
// are to blame and changes nothing.
//
// This package is what a program that uses a backend needs. What a backend
// is built from (the checks every backend runs first, the memory estimate,
// the data-parallel protocol, the optional interfaces benchmarks use) is in
// package dsx/backend/kit; the conformance suite in package
// backend/conformance runs the same checks on every backend.
package backend
