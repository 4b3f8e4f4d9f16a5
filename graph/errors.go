package graph

import (
	"errors"
	"fmt"

	"dsx/internal/dense"
	"dsx/internal/rowmath"
)

// ErrNonFinite is wrapped by every error about NaN or ±Inf in a batch's
// logits or loss.
var ErrNonFinite = errors.New("not finite")

// NonFiniteError says which row of a batch has a logit that is NaN or ±Inf,
// or a loss that is not finite although its logits are. The fused loss pass
// finds it at no extra cost: a NaN or +Inf logit, or a row of −Inf, makes the
// row's Σ exp(z − m) NaN, which the pass looks at once per row; a −Inf logit
// among finite ones is the softmax's p = 0 unless the target weighs its
// class, when the loss is +Inf (see rowExp).
type NonFiniteError struct {
	Row   int     // the batch's row; -1 when only the sum over rows overflowed
	Col   int     // the class of the row's first non-finite logit; -1 when every logit is finite
	Value float64 // that logit
	// Blame, when set, says what made the logits non-finite (x, the
	// parameters, or an overflow of x·W + b); backends fill it in, as only
	// they hold x, W and b.
	Blame string
}

func (e *NonFiniteError) Error() string {
	var what string
	switch {
	case e.Blame != "":
		what = e.Blame
	case e.Col >= 0:
		what = fmt.Sprintf("logit of class %d is %v", e.Col, e.Value)
	default:
		what = "loss is not finite (the logits are too large for the dtype)"
	}
	if e.Row < 0 {
		return "batch: " + what
	}
	return fmt.Sprintf("batch row %d: %s", e.Row, what)
}

// Unwrap makes errors.Is(err, ErrNonFinite) true.
func (e *NonFiniteError) Unwrap() error { return ErrNonFinite }

// nonFinite returns the error for the first row of z (rows×T) whose loss in
// losses is not finite, naming its first non-finite logit.
func nonFinite[F dense.Float](z []F, losses []float64, T int) *NonFiniteError {
	r, c, v := rowmath.FirstNonFinite(z, losses, T)
	return &NonFiniteError{Row: r, Col: c, Value: v}
}
