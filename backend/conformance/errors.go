package conformance

// Bad input: every error names the problem.

import (
	"errors"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/graph"
	"dsx/internal/dense"

	"gorgonia.org/tensor"
)

func (s *suite) badInput(t *testing.T) {
	p := random(31, 4, 3, 5, graph.LossOptions{})
	l := s.open(t, p, all, backend.Optimizer{})
	x := dense.New(s.dt, p.x, p.B, p.N)
	for _, c := range []struct {
		name    string
		x, y    *tensor.Dense
		wantErr string
	}{
		{"label out of range", x, dense.New(s.dt, []float64{0, 1, 5, 2}, 4), "row 2: label 5 out of range [0, 5)"},
		{"label out of range in the last row", x, dense.New(s.dt, []float64{0, 1, 2, 7}, 4), "row 3: label 7 out of range [0, 5)"},
		{"negative label", x, dense.New(s.dt, []float64{0, -1, 2, 2}, 4), "row 1: label -1 out of range"},
		{"fractional label", x, dense.New(s.dt, []float64{0, 1.5, 2, 2}, 4), "row 1: label 1.5 is not an integer"},
		{"wrong feature count", dense.New(s.dt, p.x[:8], 4, 2), nil, "shape"},
		{"targets of wrong length", x, dense.New(s.dt, []float64{0, 1, 2}, 3), "shape"},
		{"batch larger than B", dense.New(s.dt, append(p.x, p.x...), 8, 3), nil, "rows"},
	} {
		y := c.y
		if y == nil {
			y = dense.New(s.dt, p.targets, p.B)
		}
		_, err := l.Compute(c.x, y)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.wantErr)
		}
		checkPlain(t, c.name, err)
	}
	if _, err := l.Step(x, dense.New(s.dt, p.targets, p.B)); err == nil {
		t.Errorf("Step without an optimizer: no error")
	}
	if err := l.SetParams(dense.New(s.dt, p.W[:5], 1, 5), dense.New(s.dt, p.bias, 5)); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("SetParams with W of the wrong shape: %v", err)
	}
	_, err := s.b.Open(backend.Config{Spec: graph.Spec{B: 0, N: 3, T: 5, DType: s.dt}})
	if err == nil {
		t.Errorf("Open with B = 0: no error")
	}
}

// hugeShapes: a shape whose sizes overflow is refused, and an absurd one
// that does not overflow is an error wrapping ErrOutOfMemory, before
// anything is allocated (a 2⁴⁶-element W would crash the process).
func (s *suite) hugeShapes(t *testing.T) {
	want := graph.Want{DW: true, DB: true}
	l, err := s.b.Open(backend.Config{Spec: graph.Spec{B: 1, N: 1<<62 + 1, T: 4, DType: s.dt, Want: want}})
	if err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("Open with N = 2⁶²+1, T = 4: %v, want an overflow error", err)
		if l != nil {
			l.Close()
		}
	}
	l, err = s.b.Open(backend.Config{Spec: graph.Spec{B: 1, N: 1 << 24, T: 1 << 22, DType: s.dt, Want: want}})
	if !errors.Is(err, backend.ErrOutOfMemory) {
		t.Errorf("Open with N×T = 2⁴⁶: %v, want an error wrapping ErrOutOfMemory", err)
		if l != nil {
			l.Close()
		}
	}
}

// meaningless: settings that mean nothing (chunk rows below -1, a
// negative memory budget) are refused by Open, with a plain error; -1
// chunk rows (whole batches) opens.
func (s *suite) meaningless(t *testing.T) {
	spec := graph.Spec{B: 4, N: 3, T: 5, DType: s.dt, Want: graph.Want{DW: true, DB: true}}
	for _, c := range []struct {
		cfg  backend.Config
		want string
	}{
		{backend.Config{Spec: spec, ChunkRows: -2}, "chunk rows -2"},
		{backend.Config{Spec: spec, MemoryBudget: -1}, "memory budget -1"},
	} {
		l, err := s.b.Open(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, backend.ErrNotImplemented) {
			t.Errorf("Open with %s: %v, want an error saying so", c.want, err)
		}
		if l != nil {
			l.Close()
		}
	}
	l, err := s.b.Open(backend.Config{Spec: spec, ChunkRows: -1})
	if err != nil {
		t.Errorf("Open with ChunkRows -1: %v", err)
	} else {
		l.Close()
	}
}

// checkPlain fails when an error shows the machinery instead of the cause:
// the instructions and ops of the virtual machine that ran the graph.
func checkPlain(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, v := range []string{"PC ", "Failed to", "op.Do", "XentOp", "instruction"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("%s: the error shows the VM's text %q rather than the cause alone: %v", what, v, err)
		}
	}
}
