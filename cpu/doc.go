// Package cpu is the CPU backend: it runs the layer graph of package graph on
// Gorgonia's TapeMachine, compiled once per batch size and reused across
// steps, with the optimizer applied in place to the parameter values that
// every compiled graph shares. It registers itself as "cpu" and is always
// available; programs link it in with import _ "dsx/cpu". Its declaration
// (Capabilities): float32 and float64 layers, products in the layer's dtype
// only, the graph's fused softmax-cross-entropy with every loss option, row
// chunks, and data-parallel steps (Config.Comm: parallel.go is the seam
// "local gradients → reduce → update", the protocol of kit.Ranks with
// dW and db all-reduced in place on the host).
//
// Its products go to the system's BLAS, loaded at run time without cgo
// (package dsx/internal/sysblas: OpenBLAS, Accelerate, or DSX_BLAS=PATH), in
// single-threaded calls split over the module's worker pool (internal/pool), or to
// gonum's pure-Go GEMM when none loads (DSX_BLAS=off); the narrow products
// of few-class layers have their own kernels (blas.go, sysgemm.go).
//
// Reference computes the same layer in float64 straight from the formulas,
// independent of the graph, for tests.
package cpu
