// Package rowmath is the reference arithmetic of softmax-cross-entropy for
// one row of logits, and the reduction's denominators over a batch, that
// every device implements: the CPU's fused op (package graph), the CUDA
// kernels (checked against it on a GPU and, through host builds of their row
// arithmetic and the device emulator, without one). It is written from the
// formulas in float64 (see RowTerms and RowGradScaled).
//
// Options is graph.LossOptions as the arithmetic reads it: the two structs
// have the same fields, so that (*rowmath.Options)(&opts) converts one to
// the other at no cost, and the compiler fails that conversion when they
// drift apart.
package rowmath

import "fmt"

// Reduction says how per-row losses are combined (graph.Reduction, which
// documents its values).
type Reduction int

const (
	Mean Reduction = iota
	Sum
	None
)

var reductionNames = [...]string{Mean: "mean", Sum: "sum", None: "none"}

func (r Reduction) String() string {
	if r >= 0 && int(r) < len(reductionNames) {
		return reductionNames[r]
	}
	return fmt.Sprintf("Reduction(%d)", int(r))
}

// ParseReduction reads "mean", "sum" or "none"; "" is Mean.
func ParseReduction(s string) (Reduction, error) {
	if s == "" {
		return Mean, nil
	}
	for i, n := range reductionNames {
		if s == n {
			return Reduction(i), nil
		}
	}
	return Mean, fmt.Errorf("reduction %q: want mean, sum or none", s)
}

// Options are the loss options (graph.LossOptions, which documents them;
// the fields must stay the same, in the same order).
type Options struct {
	Reduction      Reduction
	ClassWeights   []float64
	IgnoreIndex    int
	UseIgnoreIndex bool
	LabelSmoothing float64
	SoftTargets    bool
	Softcap        float64
	ZLoss          float64
}

// Weight returns the weight of class c (1 without class weights).
func (o *Options) Weight(c int) float64 {
	if o.ClassWeights == nil {
		return 1
	}
	return o.ClassWeights[c]
}

// WeightSum is Σ_c w_c over T classes.
func (o *Options) WeightSum(T int) float64 {
	if o.ClassWeights == nil {
		return float64(T)
	}
	s := 0.0
	for _, w := range o.ClassWeights {
		s += w
	}
	return s
}

// Ignored reports whether a hard label is skipped.
func (o *Options) Ignored(label int) bool {
	return o.UseIgnoreIndex && label == o.IgnoreIndex
}
