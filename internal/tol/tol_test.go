package tol

import (
	"math"
	"strings"
	"testing"
)

// TestClose: the bound is Abs + Rel·max|want| (or per element), NaN never
// passes, an expected ±Inf does, and the error names the worst element and
// the reason.
func TestClose(t *testing.T) {
	want := []float64{100, 1, 0}
	if err := Close([]float64{102, 1.5, 0.5}, want, Tol{Rel: 0.01, Why: "r"}); err == nil || !strings.Contains(err.Error(), "element 0") || !strings.Contains(err.Error(), "> bound 1: r") {
		t.Errorf("2 off with a bound of 1%% of 100: %v", err)
	}
	if err := Close([]float64{100.5, 1.5, 0.5}, want, Tol{Rel: 0.006, Why: "r"}); err != nil {
		t.Errorf("every difference 0.5 ≤ 0.6: %v", err)
	}
	err := Close([]float64{100.5, 1.5, 0}, want, Tol{Rel: 0.006, PerElement: true, Why: "per element"})
	if err == nil || !strings.Contains(err.Error(), "element 1") || !strings.Contains(err.Error(), "per element") {
		t.Errorf("per element, 1.5 against 1 is off by 50%%: %v", err)
	}
	if err := Close([]float64{math.NaN()}, []float64{math.NaN()}, Tol{Abs: 1}); err == nil {
		t.Error("NaN passed")
	}
	if err := Close([]float64{math.Inf(1)}, []float64{math.Inf(1)}, Tol{}); err != nil {
		t.Errorf("expected +Inf: %v", err)
	}
	if err := Close([]float64{1}, []float64{1, 2}, Tol{}); err == nil {
		t.Error("lengths differ: no error")
	}
}
