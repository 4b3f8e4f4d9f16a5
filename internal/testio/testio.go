// Package testio holds what the tests of several packages need to feed
// inputs the way users do: a FIFO with a writer at the other end, and
// the memory a call allocates. Only tests import it.
package testio

import "runtime"

// Allocated is the memory that f allocates, as the runtime counts it.
func Allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}
