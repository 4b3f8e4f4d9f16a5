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
// result is never Inf or NaN. An empty set gives an identity scaler (Mean
// 0, Std 1).
//
// Sums are accumulated in float64, where float32 values cannot overflow
// them (|Σx| ≤ rows·3.4e38 and (x − mean)² ≤ 4.7e77, both far below
// float64's 1.8e308). What can overflow is scaling itself, which is done
// in float32 as numpy does on float32 arrays: x − mean overflows float32
// when x and the mean lie near opposite ends of its range (±3.4e38). The
// standardised value cannot then overflow: |x − mean| ≤ std·√(rows − 1).
// So FitScaler fails, naming the set, the row and the feature (0-based),
// on the first value whose x − mean is not finite in float32: the model
// would not scale its own training data. A mapped file cut short while it
// is read is an error too (see Set.Batch).
func FitScaler(s *Set) (sc *Scaler, err error) {
	if gerr := s.guard(func() { sc, err = fitScaler(s) }); gerr != nil {
		return nil, gerr
	}
	return sc, err
}

func fitScaler(s *Set) (*Scaler, error) {
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
		return sc, nil
	}
	mean := make([]float64, n)
	for j := range sum {
		mean[j] = sum[j] / float64(rows)
		sc.Mean[j] = float32(mean[j])
	}
	// Second pass over centred values: numerically safer than E[x²]-E[x]²,
	// and where x − mean is checked as Apply will compute it.
	sq := make([]float64, n)
	for r := 0; r < rows; r++ {
		row := s.X[r*n : (r+1)*n]
		for j, v := range row {
			if d32 := v - sc.Mean[j]; math.IsInf(float64(d32), 0) {
				return nil, fmt.Errorf("%s: row %d, feature %d (both 0-based): value %g cannot be standardised: its distance from the column's mean %g overflows float32 (values near ±3.4e38 do not fit the scaling)",
					s.name(), r, j, v, sc.Mean[j])
			}
			d := float64(v) - mean[j]
			sq[j] += d * d
		}
	}
	for j := range mean {
		std := math.Sqrt(sq[j] / float64(rows))
		if std < 1e-6*math.Max(1, math.Abs(mean[j])) || math.IsNaN(std) || math.IsInf(std, 0) || float32(std) == 0 {
			std = 1
		}
		sc.Std[j] = float32(min(std, math.MaxFloat32))
	}
	return sc, nil
}

// Apply scales the features of s in place, dividing in float32 as numpy
// does on float32 arrays. It fails, leaving s untouched, when the scaler's
// length does not match s.N. A value that becomes NaN or ±Inf (a feature
// far outside the data the scaler was fitted on, such as 3.4e38) is an
// error naming the set, the row and the feature (0-based); s is then
// partly scaled and must not be used.
func (sc *Scaler) Apply(s *Set) error {
	if len(sc.Mean) != s.N || len(sc.Std) != s.N {
		return fmt.Errorf("%s: scaler has %d means and %d stds but data has %d features", s.name(), len(sc.Mean), len(sc.Std), s.N)
	}
	n := s.N
	if n == 0 {
		return nil
	}
	for r := 0; r+n <= len(s.X); r += n {
		if j := scaleRow(s.X[r:r+n], sc.Mean, sc.Std); j >= 0 {
			return fmt.Errorf("%s: row %d, feature %d (both 0-based): %w", s.name(), r/n, j, scaleError(s.X[r+j], sc.Mean[j], sc.Std[j]))
		}
	}
	return nil
}

// scaleRow scales one row in place, x' = (x − mean) / std in float32, and
// returns the index of the first value that becomes NaN or ±Inf, or -1.
// That value is left unscaled; the rest of the row after it is too.
func scaleRow(row, mean, std []float32) int {
	for j, v := range row {
		y := (v - mean[j]) / std[j]
		if y-y != 0 { // NaN or ±Inf
			return j
		}
		row[j] = y
	}
	return -1
}

// scaleError says why x cannot be scaled with mean and std: the error for
// the index scaleRow returned.
func scaleError(x, mean, std float32) error {
	return fmt.Errorf("value %g scales to %g ((x − %g) / %g overflows float32): far outside the data the scaling was fitted on",
		x, (x-mean)/std, mean, std)
}
