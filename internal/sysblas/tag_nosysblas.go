//go:build nosysblas

package sysblas

// nosysblas: built with -tags nosysblas, which leaves purego out, so the
// binary is static and never loads a library.
const nosysblas = true
