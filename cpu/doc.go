// Package cpu is the CPU backend. It registers itself as "cpu" and is
// always available; programs link it in with import _ "dsx/cpu". Its
// declaration (Capabilities): float32 and float64 layers, products in the
// layer's dtype only, the graph's fused softmax-cross-entropy with every
// loss option, row chunks, and data-parallel steps (Config.Comm: parallel.go
// is the seam "local gradients → reduce → update", the protocol of
// kit.Ranks with dW and db all-reduced in place on the host).
//
// A training batch (Step, Compute) runs as a chunk loop over its rows
// (step.go): the products on the BLAS and the layer graph's own loss ops
// (graph.XentOp and its gradient, graph.ColSumOp) on each chunk, dW
// accumulated by the product, without Gorgonia's VM, which runs the forward
// graph for Logits. The rows per chunk are picked by default from the shape
// and the last-level cache, as measured to cost least (chunk.go), with
// Config.MemoryBudget a ceiling; the layer reports them, why, and what it
// holds (kit.Stats). Step is "compute the batch's loss and gradients"
// (gradients: run, or parallel's run and all-reduce), then the optimizer's
// update in place (optim.go).
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
