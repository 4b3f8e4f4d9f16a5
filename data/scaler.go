package data

import (
	"fmt"
	"math"
)

// Scaler is feature scaling learned on the training set and saved with the
// model: x' = (x - Mean[j]) * Scale[j].
type Scaler struct{ Mean, Scale []float32 }

// FitScaler learns per-feature standardisation from s: Mean is the column
// mean and Scale is 1/std (population standard deviation). Features that
// are (nearly) constant, with std < 1e-6*max(1, |mean|), get Scale 1 so
// that the result is never Inf or NaN. Sums are accumulated in float64.
// An empty set gives an identity scaler (Mean 0, Scale 1).
func FitScaler(s *Set) *Scaler {
	n := s.N
	sc := &Scaler{Mean: make([]float32, n), Scale: make([]float32, n)}
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
		for j := range sc.Scale {
			sc.Scale[j] = 1
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
		scale := 1.0
		if std >= 1e-6*math.Max(1, math.Abs(mean[j])) && !math.IsNaN(std) && !math.IsInf(std, 0) {
			scale = 1 / std
		}
		sc.Scale[j] = float32(scale)
	}
	return sc
}

// Apply scales the features of s in place. It fails, leaving s untouched,
// when the scaler's length does not match s.N.
func (sc *Scaler) Apply(s *Set) error {
	if len(sc.Mean) != s.N || len(sc.Scale) != s.N {
		return fmt.Errorf("%s: scaler has %d means and %d scales but data has %d features", s.name(), len(sc.Mean), len(sc.Scale), s.N)
	}
	n := s.N
	if n == 0 {
		return nil
	}
	for r := 0; r+n <= len(s.X); r += n {
		row := s.X[r : r+n]
		for j := range row {
			row[j] = (row[j] - sc.Mean[j]) * sc.Scale[j]
		}
	}
	return nil
}
