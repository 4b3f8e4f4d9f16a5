// Package conformance is the one test suite every backend runs:
//
//	func TestConformance(t *testing.T) { conformance.Run(t, "cpu") }
//
// A backend that is not compiled in or not usable here skips with the reason.
// The suite checks the worked softmax examples, the softmax Jacobian,
// p − y, every gradient against the float64 reference of package cpu and
// against central finite differences, every loss option, awkward sizes,
// optimizer steps and errors on bad input, in float32 and float64, with fixed
// seeds. All tolerances are in tol.go, each with its reason.
package conformance
