// Package registrytest tests the registry's errors (backend.Get,
// backend.Choose) in a test binary that links no backend, as a program that
// forgot to import one is. It has no code of its own.
package registrytest
