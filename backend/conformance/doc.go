// Package conformance is the one test suite every backend runs:
//
//	func TestConformance(t *testing.T) { conformance.Run(t, "cpu") }
//
// A backend that is not compiled in or not usable here skips with the reason.
// The suite checks the worked softmax examples, the softmax Jacobian,
// p − y, every gradient against the float64 reference of package cpu and
// against central finite differences, every loss option, awkward sizes,
// optimizer steps, the optimizer's state out and in (a restored layer steps
// to the same bits as the one it was saved from) and errors on bad input,
// in float32 and float64, with fixed seeds. What runs follows the backend's declaration (Backend.Capabilities):
// what it does not declare is skipped with the reason, and Declared checks
// that Open refuses it with ErrNotImplemented and opens all that is
// declared; each declared softmax-cross-entropy implementation beyond Fused
// runs the checks that hold for any (Xent=unfused). All tolerances are in
// the module's internal package tol (internal/tol/tol.go), each with its
// reason, shared with the CUDA backend's tests and package graph's.
package conformance
