package graph

import (
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestSpecOverflow: a shape whose matrix sizes overflow is an error (N =
// 2⁶²+1 with T = 4 once wrapped around to a 4-element W).
func TestSpecOverflow(t *testing.T) {
	for _, c := range []struct {
		B, N, T int
		want    string
	}{
		{1, 1<<62 + 1, 4, "overflows"}, // B×N = N alone is too many
		{1 << 40, 1 << 40, 2, "B×N overflows"},
		{1 << 31, 1, 1 << 31, "B×T overflows"},
		{1, 1 << 30, 1 << 30, "N×T overflows"}, // 2⁶⁰ elements: 2⁶³ bytes
	} {
		err := Spec{B: c.B, N: c.N, T: c.T, DType: tensor.Float32}.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("B×N×T = %d×%d×%d: %v, want %q", c.B, c.N, c.T, err, c.want)
		}
	}
	if err := (Spec{B: 1, N: 1 << 29, T: 1 << 30, DType: tensor.Float32}).Validate(); err != nil {
		t.Errorf("2⁵⁹ elements (absurd, but sizes fit): %v", err)
	}
}
