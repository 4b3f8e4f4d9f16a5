package model

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"dsx/internal/quote"
	"dsx/internal/safetensors"
)

// Format is the value of the "format" metadata key in files written by
// Save: "dsx-softmax-v" followed by FormatVersion (see format.go).
const Format = "dsx-softmax-v1"

// CheckpointFormat is the "format" of a training checkpoint (package
// checkpoint): a model file whose W and b are in the dtype the run trains
// in (F32 or F64), with the trainer's tensors (names starting with
// "optim." or "history."), its metadata (keys starting with
// "checkpoint.") and checksums besides. Load reads it as the model it
// holds.
const CheckpointFormat = "dsx-checkpoint-v1"

// TrainerPrefixes are the name prefixes of a checkpoint's tensors and
// metadata keys that belong to the trainer, not to the model: Load skips
// them in a checkpoint (and refuses such tensors in a model file).
var TrainerPrefixes = []string{"optim.", "history.", "checkpoint."}

func trainerName(name string) bool {
	for _, p := range TrainerPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Model is a trained softmax classifier.
type Model struct {
	W         []float32         // N×T row-major (so logits = x·W + b)
	B         []float32         // T
	N, T      int               // features, classes
	Mean, Std []float32         // feature scaling x' = (x − Mean)/Std (N each); nil = identity
	Classes   []string          // class names (len T) or nil
	Meta      map[string]string // extra metadata (e.g. "epochs", "test_accuracy", "device")

	// What wrote a model that Load read, from the file's metadata; Save
	// ignores both and records Format and this build's version.Short().
	// FileFormat is the file's "format" (Format, an older model format, or
	// CheckpointFormat; "" for a safetensors file without one, not written
	// by dsx); DsxVersion the dsx that saved it ("" in files from before
	// dsx recorded it, which are still read).
	FileFormat string
	DsxVersion string
}

// reserved metadata keys, written by Save from the model's own fields and
// this build: the format, the class names and the dsx version (and the
// checksums a checkpoint records, safetensors.ChecksumsKey).
var reserved = map[string]bool{"format": true, "classes": true, "dsx_version": true, safetensors.ChecksumsKey: true}

// Validate checks the model's shapes, that no parameter is NaN or
// infinite, and that class names and metadata are valid UTF-8.
func (m *Model) Validate() error {
	if m == nil {
		return fmt.Errorf("model is nil")
	}
	switch {
	case m.N <= 0:
		return fmt.Errorf("model has %d features, need at least 1", m.N)
	case m.T <= 0:
		return fmt.Errorf("model has %d classes, need at least 1", m.T)
	case m.T > math.MaxInt/m.N || len(m.W) != m.N*m.T:
		return fmt.Errorf("model W has %d values, want N×T = %d×%d", len(m.W), m.N, m.T)
	case len(m.B) != m.T:
		return fmt.Errorf("model b has %d values, want T = %d", len(m.B), m.T)
	case (m.Mean == nil) != (m.Std == nil):
		return fmt.Errorf("model has scaler mean (%d values) and std (%d values): need both or neither", len(m.Mean), len(m.Std))
	case m.Mean != nil && len(m.Mean) != m.N:
		return fmt.Errorf("model scaler mean has %d values, want N = %d", len(m.Mean), m.N)
	case m.Std != nil && len(m.Std) != m.N:
		return fmt.Errorf("model scaler std has %d values, want N = %d", len(m.Std), m.N)
	case m.Classes != nil && len(m.Classes) != m.T:
		return fmt.Errorf("model has %d class names, want T = %d", len(m.Classes), m.T)
	}
	for _, t := range []struct {
		name string
		v    []float32
	}{{"W", m.W}, {"b", m.B}, {"scaler.mean", m.Mean}, {"scaler.std", m.Std}} {
		if i := firstNonFinite(t.v); i >= 0 {
			return fmt.Errorf("model %s[%d] is %v", t.name, i, t.v[i])
		}
	}
	for j, s := range m.Std {
		if s <= 0 {
			return fmt.Errorf("model scaler.std[%d] is %v, want > 0 (features are divided by it)", j, s)
		}
	}
	for k := range m.Meta {
		if reserved[k] || k == "" {
			return fmt.Errorf("model metadata key %s is reserved", quote.Value(k))
		}
	}
	return m.checkUTF8()
}

// checkUTF8 reports the first class name, metadata key or value that is
// not valid UTF-8: JSON, and so the file, cannot hold it, and writing it
// would turn its bad bytes into U+FFFD without a word.
func (m *Model) checkUTF8() error {
	for i, c := range m.Classes {
		if !utf8.ValidString(c) {
			return fmt.Errorf("model class name %d (%s) is not valid UTF-8", i, quote.Value(c))
		}
	}
	keys := make([]string, 0, len(m.Meta))
	for k := range m.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !utf8.ValidString(k) {
			return fmt.Errorf("model metadata key %s is not valid UTF-8", quote.Value(k))
		}
		if v := m.Meta[k]; !utf8.ValidString(v) {
			return fmt.Errorf("model metadata %s: value %s is not valid UTF-8", quote.Value(k), quote.Value(v))
		}
	}
	return nil
}

func firstNonFinite(v []float32) int {
	for i, x := range v {
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return i
		}
	}
	return -1
}

// CheckInput reports whether data with n features per row fits the model.
func (m *Model) CheckInput(n int) error {
	if n != m.N {
		return fmt.Errorf("model expects %d features, data has %d", m.N, n)
	}
	return nil
}

// Scaler returns the feature scaling saved with the model; both are nil
// when the model has none.
func (m *Model) Scaler() (mean, std []float32) { return m.Mean, m.Std }

// ScaleInputs applies the model's feature scaling in place to the first
// rows rows of x (rows×N, row-major): x' = (x − Mean[j]) / Std[j], in
// float32, as numpy computes (x - mean) / std on float32 arrays. It does
// nothing when the model has no scaling. Call it before Logits or Predict
// on raw features. A value that becomes NaN or ±Inf (a feature far outside
// the training data, such as 3.4e38) is an error naming its row and feature
// (0-based), a *ScaleError; x is then partly scaled.
func (m *Model) ScaleInputs(x []float32, rows int) error {
	if err := m.checkRows(x, rows, "x"); err != nil {
		return err
	}
	if m.Mean == nil && m.Std == nil {
		return nil
	}
	if len(m.Mean) != m.N || len(m.Std) != m.N {
		return fmt.Errorf("model scaler has %d means and %d stds, want N = %d of each", len(m.Mean), len(m.Std), m.N)
	}
	n := m.N
	for r := 0; r < rows; r++ {
		row := x[r*n : (r+1)*n]
		for j, v := range row {
			y := (v - m.Mean[j]) / m.Std[j]
			if y-y != 0 { // NaN or ±Inf
				return &ScaleError{Row: r, Feature: j, Value: v, Scaled: y, Mean: m.Mean[j], Std: m.Std[j]}
			}
			row[j] = y
		}
	}
	return nil
}

// checkRows reports, as an error rather than a panic, rows < 0, a model
// whose N is not positive, and a slice (named what) shorter than rows×N.
func (m *Model) checkRows(x []float32, rows int, what string) error {
	switch {
	case m == nil:
		return fmt.Errorf("model is nil")
	case m.N <= 0:
		return fmt.Errorf("model has %d features, need at least 1", m.N)
	case rows < 0:
		return fmt.Errorf("rows %d: want rows ≥ 0", rows)
	case rows > len(x)/m.N:
		return fmt.Errorf("%s has %d values, fewer than rows × N = %d × %d", what, len(x), rows, m.N)
	}
	return nil
}

// ScaleError is a feature that standardisation takes out of float32's
// range. Row counts from 0 in the rows given to ScaleInputs (callers that
// scale gathered batches put the data set's row there).
type ScaleError struct {
	Row, Feature             int
	Value, Scaled, Mean, Std float32
}

func (e *ScaleError) Error() string {
	return fmt.Sprintf("row %d, feature %d (both 0-based): value %g scales to %g ((x − %g) / %g overflows float32): far outside the training data",
		e.Row, e.Feature, e.Value, e.Scaled, e.Mean, e.Std)
}

// Logits computes out = x·W + b for rows rows of already scaled features
// x (rows×N) into out (rows×T). A negative rows, an x or out too short
// for rows, or W and b that do not match N and T are an error (nothing is
// written); check data with CheckInput first.
func (m *Model) Logits(x []float32, rows int, out []float32) error {
	if err := m.checkRows(x, rows, "x"); err != nil {
		return err
	}
	n, t := m.N, m.T
	switch {
	case t <= 0:
		return fmt.Errorf("model has %d classes, need at least 1", t)
	case t > math.MaxInt/n || len(m.W) != n*t || len(m.B) != t:
		return fmt.Errorf("model W has %d values and b %d, want N×T = %d×%d and T", len(m.W), len(m.B), n, t)
	case rows > len(out)/t:
		return fmt.Errorf("out has %d values, fewer than rows × T = %d × %d", len(out), rows, t)
	}
	for r := 0; r < rows; r++ {
		xr := x[r*n : (r+1)*n]
		o := out[r*t : (r+1)*t]
		copy(o, m.B)
		for k, xv := range xr {
			if xv == 0 {
				continue
			}
			w := m.W[k*t : (k+1)*t]
			for c, wv := range w {
				o[c] += xv * wv
			}
		}
	}
	return nil
}

// Predict returns the most probable class of each of rows rows of already
// scaled features x (rows×N), and the softmax probabilities (rows×T).
// It does not scale x: call ScaleInputs first on raw features. A bad rows
// or a short x is an error, as in Logits.
func (m *Model) Predict(x []float32, rows int) (labels []int32, probs []float32, err error) {
	if err := m.checkRows(x, rows, "x"); err != nil {
		return nil, nil, err
	}
	if m.T <= 0 || rows > math.MaxInt/m.T {
		return nil, nil, fmt.Errorf("model has %d classes: rows × T overflows or T < 1", m.T)
	}
	t := m.T
	probs = make([]float32, rows*t)
	labels = make([]int32, rows)
	if err := m.Logits(x, rows, probs); err != nil {
		return nil, nil, err
	}
	for r := 0; r < rows; r++ {
		p := probs[r*t : (r+1)*t]
		best := 0
		for c := range p {
			if p[c] > p[best] {
				best = c
			}
		}
		labels[r] = int32(best)
		mx := float64(p[best])
		var sum float64
		for c := range p {
			e := math.Exp(float64(p[c]) - mx)
			p[c] = float32(e)
			sum += e
		}
		for c := range p {
			p[c] = float32(float64(p[c]) / sum)
		}
	}
	return labels, probs, nil
}
