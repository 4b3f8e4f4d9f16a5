// Package kit is what a dsx backend is built from, kept out of package
// backend so that a program using a backend sees only its API there.
//
// Every backend calls the same checks first, so that bad input gets the
// same error everywhere: CheckBatch (shapes and dtypes of a batch),
// Contiguous (a strided view read as shown), CheckStep, CheckParams (no
// NaN or ±Inf), CheckOptimizerState. ExplainNonFinite turns non-finite
// logits into an error that says whether x or the parameters are to blame.
//
// Memory: Footprint estimates from a Config alone what a layer allocates,
// by category (the same estimate for every device; a backend adds what is
// its own), Sizer multiplies and adds sizes with overflow checks, and
// CheckHostMemory compares a need with what the host has (the least of
// MemAvailable, the cgroup limit and RLIMIT_AS), so that Open fails with
// an error wrapping backend.ErrOutOfMemory before it allocates.
//
// Data parallelism: Ranks is a layer's side of a data-parallel step
// (backend.Config.Comm), the same protocol on every backend
// (DataParallel, LocalDenominators); Parallel is what a layer reports of
// its all-reduces.
//
// Benchmarks (dsx bench) look for the optional layer interfaces Stats
// (memory and the products' floor) and Resident (a batch kept on the
// device) with type assertions.
package kit
