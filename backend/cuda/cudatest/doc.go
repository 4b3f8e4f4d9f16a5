// Package cudatest holds the CUDA backend's tests that run through the
// backend interface, exported so that the same tests run on the real GPU
// (package dsx/backend/cuda, build tag gpu) and on the host emulator of its
// device (package dsx/backend/cuda/emu, in `make test`): parity with the CPU
// backend for every loss option at T = 3 … 50257, optimizer steps, training
// accuracy, the chunked / unfused / TF32 / BF16 variants, Resident and
// Stats. Each takes the registry name of the backend under test.
//
// Tolerances (bound = Abs + Rel·max|reference|, as tol.Close) come
// from the module's internal package tol: the CPU and the device sum the
// products in different orders, so float32 is held to tol.ParityF32 and
// float64 to tol.ParityF64; TF32 and BF16 to their derived bounds there.
package cudatest
