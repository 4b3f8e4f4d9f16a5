// Package hostkern builds the CUDA kernels of package cudakernels for the
// host and runs them.
package hostkern
