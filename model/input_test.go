package model

import (
	"strings"
	"testing"
)

// TestBadRowsAreErrors: ScaleInputs, Logits and Predict report a negative
// row count, a short x or out, and a model whose shapes do not match, as
// errors; none panics.
func TestBadRowsAreErrors(t *testing.T) {
	m := sample() // N = 3, T = 2, with a scaler
	noScaler := sample()
	noScaler.Mean, noScaler.Std = nil, nil
	badW := sample()
	badW.W = badW.W[:2]
	badMean := sample()
	badMean.Mean = badMean.Mean[:1]
	for _, c := range []struct {
		name string
		m    *Model
		x    []float32
		rows int
		out  []float32
		want string
	}{
		{"rows -1", m, make([]float32, 6), -1, make([]float32, 4), "rows -1"},
		{"short x", m, make([]float32, 5), 2, make([]float32, 4), "x has 5 values, fewer than rows × N = 2 × 3"},
		{"short x, no scaler", noScaler, make([]float32, 5), 2, make([]float32, 4), "x has 5 values"},
		{"huge rows", m, make([]float32, 6), 1 << 62, make([]float32, 4), "fewer than rows × N"},
		{"short out", m, make([]float32, 6), 2, make([]float32, 3), "out has 3 values"},
		{"W short", badW, make([]float32, 6), 2, make([]float32, 4), "model W has 2 values"},
		{"mean short", badMean, make([]float32, 6), 2, make([]float32, 4), "1 means"},
		{"nil model", nil, make([]float32, 6), 2, make([]float32, 4), "model is nil"},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := func(fn string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: got %v, want an error containing %q", fn, err, c.want)
				}
			}
			scaleErr := c.m.ScaleInputs(c.x, c.rows)
			if c.name != "short out" && c.name != "W short" {
				check("ScaleInputs", scaleErr)
			}
			if c.name != "mean short" {
				check("Logits", c.m.Logits(c.x, c.rows, c.out))
			}
			if c.name != "short out" && c.name != "mean short" {
				_, _, err := c.m.Predict(c.x, c.rows)
				check("Predict", err)
			}
		})
	}
	// rows 0 is fine.
	if _, _, err := m.Predict(nil, 0); err != nil {
		t.Errorf("Predict of 0 rows: %v", err)
	}
}
