// Package sysblas loads the system's BLAS at run time, without cgo, so that
// the default CGO_ENABLED=0 build of dsx runs its products on OpenBLAS
// (Linux) or Accelerate (macOS) where one is installed, and still starts
// where none is.
//
// The library is opened with dlopen through github.com/ebitengine/purego
// (its fakecgo sets up the C runtime in a binary built without cgo; a cgo
// build such as dsx-gpu uses the real one). Only the Fortran entry points
// sgemm_ and dgemm_ are called: they take every argument by pointer, so a
// call needs no C calling-convention knowledge beyond pointer arguments and
// allocates nothing.
//
// The environment variable DSX_BLAS chooses: unset, empty or "auto" searches
// the platform's default names (libopenblas.so.0 on Linux; Accelerate on
// macOS), "off" loads nothing, and anything else is the path of a library
// that exports sgemm_ and dgemm_ (OpenBLAS, BLIS, MKL's libmkl_rt, ...).
// When nothing loads, Load says why and callers use their own GEMM.
package sysblas
