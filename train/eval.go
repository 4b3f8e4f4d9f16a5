package train

import (
	"fmt"

	"dsx/backend"
	"dsx/data"
	"dsx/dist"
	"dsx/internal/dense"
	"dsx/internal/rowmath"
)

// ForBatches runs the layer forward over rows [lo, hi) of s in order, in
// batches of at most the layer's B rows scaled by scale (nil: none), and
// hands fn each batch's first row, its logits (n×T, float64) and labels
// (nil for an unlabelled set). Logits that are not finite although the
// scaled features are (x·W + b overflowing) are an error naming the row.
func ForBatches(l backend.Layer, s *data.Set, lo, hi int, scale ScaleFunc, fn func(start, n int, z []float64, labels []int32) error) error {
	B := l.Config().B
	bt := NewBatcher(s, B, l.Config().DType, scale)
	idx := make([]int, B)
	var z []float64
	for start := lo; start < hi; start += B {
		n := min(B, hi-start)
		for i := range idx[:n] {
			idx[i] = start + i
		}
		x, _, labels, err := bt.Batch(idx[:n])
		if err != nil {
			return err
		}
		logits, err := l.Logits(x)
		if err != nil {
			return err
		}
		z = dense.Into(z, logits)
		if i := firstNonFinite(z); i >= 0 {
			T := len(z) / n
			return fmt.Errorf("%s: row %d: logit of class %d is %v although the row's scaled features are finite: x·W + b overflows %v (a feature far outside the training data?)",
				s.Source, start+i/T, i%T, z[i], l.Config().DType)
		}
		if !s.Labelled() {
			labels = nil
		}
		if err := fn(start, n, z, labels); err != nil {
			return err
		}
	}
	return nil
}

// Evaluate returns the mean plain cross-entropy (no loss options) and the
// accuracy of the layer on a labelled set whose features scale scales
// (nil: none). A label the layer has no class for counts as wrong and
// adds no loss.
func Evaluate(l backend.Layer, s *data.Set, scale ScaleFunc) (loss, acc float64, err error) {
	return evaluate(l, s, scale, dist.Local{})
}

// evaluate is Evaluate with the rows split over c's ranks (dist.Share)
// and the sums all-reduced.
func evaluate(l backend.Layer, s *data.Set, scale ScaleFunc, c dist.Comm) (loss, acc float64, err error) {
	if !s.Labelled() {
		return 0, 0, fmt.Errorf("%s: evaluation needs labels", s.Source)
	}
	var plain rowmath.Options // plain cross-entropy
	// The loss, the correct rows, and one flag a rank (it failed), summed
	// over the ranks in one all-reduce: a rank whose rows fail still takes
	// part, so that every rank returns an error.
	sums := make([]float64, 2+c.Size())
	lo, hi := dist.Share(s.Rows, c.Rank(), c.Size())
	err = ForBatches(l, s, lo, hi, scale, func(_, n int, z []float64, labels []int32) error {
		T := len(z) / n
		for i := 0; i < n; i++ {
			row := z[i*T : (i+1)*T]
			if int32(rowmath.Argmax(row)) == labels[i] {
				sums[1]++
			}
			if int(labels[i]) < T {
				rl, _ := rowmath.RowLoss(row, int(labels[i]), nil, &plain)
				sums[0] += rl
			}
		}
		return nil
	})
	if err != nil {
		clear(sums)
		sums[2+c.Rank()] = 1
	}
	if cerr := c.AllReduceF64(sums); cerr != nil {
		return 0, 0, cerr
	}
	if err != nil {
		return 0, 0, err
	}
	if err := dist.FailedRanks(sums[2:]); err != nil {
		return 0, 0, err
	}
	return sums[0] / float64(s.Rows), sums[1] / float64(s.Rows), nil
}

// firstNonFinite is the index of v's first NaN or ±Inf, or -1.
func firstNonFinite(v []float64) int {
	for i, x := range v {
		if x-x != 0 {
			return i
		}
	}
	return -1
}
