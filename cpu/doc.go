// Package cpu is the CPU backend: it runs the layer graph of package graph on
// Gorgonia's TapeMachine, compiled once per batch size and reused across
// steps, with the optimizer applied in place to the parameter values that
// every compiled graph shares. It registers itself as "cpu" and is always
// available.
//
// Reference computes the same layer in float64 straight from the formulas,
// independent of the graph, for tests.
package cpu
