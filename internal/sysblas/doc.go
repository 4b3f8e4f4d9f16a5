// Package sysblas loads the system's BLAS at run time, without cgo, so that
// the default CGO_ENABLED=0 build of dsx runs its products on OpenBLAS
// (Linux, Windows) or Accelerate (macOS) where one is installed, and still
// starts where none is.
//
// On Linux and macOS the library is opened with dlopen through
// github.com/ebitengine/purego (its fakecgo sets up the C runtime in a
// binary built without cgo; a cgo build such as dsx-gpu uses the real one).
// On Windows the DLL is loaded with LoadLibraryEx by its full path, found
// beside the executable or on PATH (never in the current directory), and
// called with syscall.SyscallN: Go calls DLLs without cgo there (NOT run:
// the project has no Windows machine; it is cross-built and vetted with
// GOOS=windows). Only the Fortran entry points sgemm_ and dgemm_ are
// called: they take every argument by pointer, so a call needs no C
// calling-convention knowledge beyond pointer arguments and allocates
// nothing.
//
// The environment variable DSX_BLAS chooses: unset, empty or "auto" searches
// the platform's default names (libopenblas.so.0 on Linux; Accelerate on
// macOS; libopenblas.dll or openblas.dll on Windows), "off" loads nothing,
// and anything else is the path of a library that exports sgemm_ and
// dgemm_ (OpenBLAS, BLIS, MKL's libmkl_rt, ...).
// When nothing loads, Load says why (and, for the default search, the
// command that installs the platform's usual library: Info.Install) and
// callers use their own GEMM.
// DSX_BLAS_THREADS=n sets the threads of one call where the library has a
// setting (OpenBLAS's openblas_set_num_threads); the default is 1, for
// callers that split a product over their own workers.
//
// purego needs the system's dynamic loader, so a binary with this package
// is dynamically linked against the C library even with CGO_ENABLED=0;
// -tags nosysblas leaves purego out (a static binary that loads nothing).
package sysblas
