package data

import (
	"fmt"
	"math"
)

// Scaler is feature scaling learned on the training set and saved with the
// model: x' = (x − Mean[j]) / Std[j], as scikit-learn's StandardScaler
// (whose scale_ is this Std).
type Scaler struct{ Mean, Std []float32 }

// FitScaler learns per-feature standardisation from s: Mean is the column
// mean and Std the population standard deviation. Features that are
// (nearly) constant, with std < 1e-6*max(1, |mean|), get Std 1 so that the
// result is never Inf or NaN. Sums are accumulated in float64. An empty set
// gives an identity scaler (Mean 0, Std 1).
func FitScaler(s *Set) *Scaler {
	n := s.N
	sc := &Scaler{Mean: make([]float32, n), Std: make([]float32, n)}
	sum := make([]float64, n)
	rows := 0
	for r := 0; r < s.Rows && (r+1)*n <= len(s.X); r++ {
		row := s.X[r*n : (r+1)*n]
		for j, v := range row {
			sum[j] += float64(v)
		}
		rows++
	}
	if rows == 0 {
		for j := range sc.Std {
			sc.Std[j] = 1
		}
		return sc
	}
	mean := make([]float64, n)
	for j := range sum {
		mean[j] = sum[j] / float64(rows)
	}
	// Second pass over centred values: numerically safer than E[x²]-E[x]².
	sq := make([]float64, n)
	for r := 0; r < rows; r++ {
		row := s.X[r*n : (r+1)*n]
		for j, v := range row {
			d := float64(v) - mean[j]
			sq[j] += d * d
		}
	}
	for j := range mean {
		std := math.Sqrt(sq[j] / float64(rows))
		sc.Mean[j] = float32(mean[j])
		if std < 1e-6*math.Max(1, math.Abs(mean[j])) || math.IsNaN(std) || math.IsInf(std, 0) || float32(std) == 0 {
			std = 1
		}
		sc.Std[j] = float32(std)
	}
	return sc
}

// Apply scales the features of s in place, dividing in float32 as numpy
// does on float32 arrays. It fails, leaving s untouched, when the scaler's
// length does not match s.N.
func (sc *Scaler) Apply(s *Set) error {
	if len(sc.Mean) != s.N || len(sc.Std) != s.N {
		return fmt.Errorf("%s: scaler has %d means and %d stds but data has %d features", s.name(), len(sc.Mean), len(sc.Std), s.N)
	}
	n := s.N
	if n == 0 {
		return nil
	}
	for r := 0; r+n <= len(s.X); r += n {
		row := s.X[r : r+n]
		for j := range row {
			row[j] = (row[j] - sc.Mean[j]) / sc.Std[j]
		}
	}
	return nil
}
