package graph

import (
	"errors"
	"fmt"
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

// FindNonFinite is the error for the first row of z (rows×T) whose loss in
// losses is not finite, naming its first non-finite logit (Col −1 when they
// are all finite), or for row −1 when every row's loss is finite (only
// their sum overflowed). Backends that compute the loss elsewhere (the
// CUDA backend) use it on the host to name what is to blame.
func FindNonFinite[F Float](z []F, losses []float64, T int) *NonFiniteError {
	return nonFinite(z, losses, T)
}

// nonFinite returns the error for the first row of z (rows×T) whose loss in
// losses is not finite, naming its first non-finite logit.
func nonFinite[F Float](z []F, losses []float64, T int) *NonFiniteError {
	for i, l := range losses {
		if l-l == 0 {
			continue
		}
		for c, v := range z[i*T : (i+1)*T] {
			if f := float64(v); f-f != 0 {
				return &NonFiniteError{Row: i, Col: c, Value: f}
			}
		}
		return &NonFiniteError{Row: i, Col: -1}
	}
	return &NonFiniteError{Row: -1, Col: -1}
}
