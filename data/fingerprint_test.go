package data

import (
	"strings"
	"testing"
)

// TestFingerprint: equal content gives an equal fingerprint; one feature
// or one label changed, or the rows in another order, another.
func TestFingerprint(t *testing.T) {
	mk := func() *Set {
		return &Set{X: []float32{1, 2, 3, 4, 5, 6}, Y: []int32{0, 1, 2}, Rows: 3, N: 2, Classes: 3}
	}
	fp := func(s *Set) string {
		f, err := s.Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := fp(mk())
	if !strings.HasPrefix(base, "3 rows × 2 features, 3 classes, crc32c ") || base != fp(mk()) {
		t.Errorf("fingerprint %q (then %q)", base, fp(mk()))
	}
	for name, change := range map[string]func(s *Set){
		"a feature":      func(s *Set) { s.X[3] = 4.0000005 },
		"a label":        func(s *Set) { s.Y[2] = 1 },
		"rows swapped":   func(s *Set) { s.X[0], s.X[1], s.X[2], s.X[3] = 3, 4, 1, 2; s.Y[0], s.Y[1] = 1, 0 },
		"no labels":      func(s *Set) { s.Y, s.Classes = nil, 0 },
		"another layout": func(s *Set) { s.Rows, s.N = 2, 3 },
	} {
		s := mk()
		change(s)
		if f := fp(s); f == base {
			t.Errorf("%s: the fingerprint stays %q", name, f)
		}
	}
}
