package graph

import (
	"fmt"
	"math"

	"dsx/internal/rowmath"
)

// Reduction says how per-row losses are combined, as in
// torch.nn.CrossEntropyLoss (its String gives "mean", "sum" or "none").
type Reduction = rowmath.Reduction

const (
	// Mean divides the summed loss by the summed weight of the non-ignored
	// rows (hard targets) or by the number of rows (probability targets).
	// When that denominator is 0 (every row ignored, or every kept row's
	// label has class weight 0) the loss is 0 and the gradients are zero,
	// not 0/0 (PyTorch's NaN): such a batch teaches nothing and changes
	// nothing.
	Mean = rowmath.Mean
	// Sum adds the per-row losses.
	Sum = rowmath.Sum
	// None keeps one loss per row.
	None = rowmath.None
)

// ParseReduction reads "mean", "sum" or "none" ("" is Mean).
func ParseReduction(s string) (Reduction, error) { return rowmath.ParseReduction(s) }

// LossOptions are the options of torch.nn.CrossEntropyLoss, with the same
// meaning. The zero value is PyTorch's default except for ignore_index, which
// is off unless UseIgnoreIndex is set (a label of -100 is then an error rather
// than silently ignored).
type LossOptions struct {
	Reduction Reduction
	// ClassWeights, when non-nil, has one weight per class (len T).
	ClassWeights []float64
	// IgnoreIndex is a label whose rows contribute neither loss nor gradient
	// (hard targets only), when UseIgnoreIndex is true.
	IgnoreIndex    int
	UseIgnoreIndex bool
	// LabelSmoothing in [0, 1]: targets become (1−ε)·y + ε/T.
	LabelSmoothing float64
	// SoftTargets: targets are B×T class probabilities instead of B class
	// indices.
	SoftTargets bool

	// Softcap c > 0 caps the logits before the softmax, z ← c·tanh(z/c)
	// (Gemma 2's final-logit soft-capping; Liger's softcap); 0 is off. The
	// loss, the softmax and the z-loss all see the capped logits, and the
	// gradient goes back through the cap (a factor 1 − tanh²(z/c)).
	Softcap float64
	// ZLoss λ ≥ 0 adds λ·lse² per row, lse = log Σ_c exp(z_c) of the (capped)
	// logits (PaLM's z-loss; Liger's lse_square_scale); 0 is off. As in
	// Liger: an ignored row has none; it is not weighted by the class
	// weights; Mean divides its sum by the number of kept rows,
	// not by their summed weight; label smoothing does not change it; with
	// Reduction None it is part of each row's loss. Its gradient is
	// 2λ·lse·p_c times the row's scale.
	ZLoss float64
}

// Validate checks the options against T classes.
func (o LossOptions) Validate(T int) error {
	if o.Reduction < Mean || o.Reduction > None {
		return fmt.Errorf("loss options: unknown reduction %d", int(o.Reduction))
	}
	if o.ClassWeights != nil {
		if len(o.ClassWeights) != T {
			return fmt.Errorf("loss options: %d class weights for %d classes", len(o.ClassWeights), T)
		}
		for c, w := range o.ClassWeights {
			if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
				return fmt.Errorf("loss options: class weight %d is %v (want a finite value ≥ 0)", c, w)
			}
		}
	}
	if math.IsNaN(o.LabelSmoothing) || o.LabelSmoothing < 0 || o.LabelSmoothing > 1 {
		return fmt.Errorf("loss options: label smoothing %v outside [0, 1]", o.LabelSmoothing)
	}
	if math.IsNaN(o.Softcap) || math.IsInf(o.Softcap, 0) || o.Softcap < 0 {
		return fmt.Errorf("loss options: soft cap %v (want a finite value > 0, or 0 for none)", o.Softcap)
	}
	if math.IsNaN(o.ZLoss) || math.IsInf(o.ZLoss, 0) || o.ZLoss < 0 {
		return fmt.Errorf("loss options: z-loss %v (want a finite value ≥ 0)", o.ZLoss)
	}
	return nil
}

// row is o as the per-row arithmetic takes it (the same fields: the
// conversion costs nothing, and fails to compile if they drift apart).
func (o *LossOptions) row() *rowmath.Options { return (*rowmath.Options)(o) }

// Want lists the gradients a layer computes.
type Want struct{ DW, DB, DX bool }

// String is for error messages and benchmark names.
func (w Want) String() string {
	s := ""
	for _, p := range []struct {
		on   bool
		name string
	}{{w.DW, "dW"}, {w.DB, "db"}, {w.DX, "dx"}} {
		if p.on {
			if s != "" {
				s += ","
			}
			s += p.name
		}
	}
	if s == "" {
		return "none"
	}
	return s
}
