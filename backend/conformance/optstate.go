package conformance

// The optimizer's state out and in (Layer.OptimizerState and
// SetOptimizerState): what checkpoints are made of.

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/cpu"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// stateOptimizers are the optimizers whose state is checked: SGD without
// momentum (no tensors, a step count), SGD with momentum, Adam and AdamW.
var stateOptimizers = []backend.Optimizer{
	{Kind: backend.SGD, LR: 0.1},
	{Kind: backend.SGD, LR: 0.1, Momentum: 0.9, WeightDecay: 0.01},
	{Kind: backend.Adam, LR: 0.01, WeightDecay: 0.01},
	{Kind: backend.Adam, LR: 0.01, WeightDecay: 0.1, Decoupled: true},
}

func optName(o backend.Optimizer) string {
	return fmt.Sprintf("%s,m=%g,wd=%g,decoupled=%v", o.Kind, o.Momentum, o.WeightDecay, o.Decoupled)
}

// batches draws n batches of p's shape, each of its own seed, so that the
// steps after a restore see other gradients than those before it.
func batches(s *suite, p problem, n int) [][2]*tensor.Dense {
	out := make([][2]*tensor.Dense, n)
	for i := range out {
		q := random(uint64(100+i), p.B, p.N, p.T, p.opts)
		out[i] = [2]*tensor.Dense{dense.New(s.dt, q.x, p.B, p.N), dense.New(s.dt, q.targets, p.targetShape()...)}
	}
	return out
}

// sameBits fails unless got and want hold the same floats, bit for bit
// (a float32 widened to float64 keeps its bits' meaning exactly). Same
// device, same inputs, same arithmetic: a restored layer must not merely
// come close, it must be the layer it was saved from.
func sameBits(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Errorf("%s[%d] = %v, want %v bit for bit (the uninterrupted layer's)", what, i, got[i], want[i])
			return
		}
	}
}

// optimizerState: 3 steps, the state out, 3 more steps; a second layer
// given the parameters and the state after the first 3 takes the same 3
// steps to the same bits. The state's tensors are those
// backend.OptimizerTensors names, holding PyTorch's values (checked
// against refUpdate), and it reads back as it was set.
func (s *suite) optimizerState(t *testing.T) {
	for _, o := range stateOptimizers {
		t.Run(optName(o), func(t *testing.T) {
			p := random(41, 6, 4, 5, graph.LossOptions{})
			bs := batches(s, p, 6)
			a := s.open(t, p, graph.Want{DW: true, DB: true}, o)
			st0, err := a.OptimizerState()
			if err != nil {
				t.Fatal(err)
			}
			if st0.Kind != o.Kind || st0.Step != 0 || len(st0.Tensors) != 0 {
				t.Errorf("state before any step: kind %v, step %d, %d tensors; want %v, 0, none", st0.Kind, st0.Step, len(st0.Tensors), o.Kind)
			}
			// The reference: PyTorch's formulas in float64 from the
			// reference gradients at the layer's own (rounded) parameters.
			ow := o.WithDefaults()
			w, b := dense.Round(s.dt, p.W), dense.Round(s.dt, p.bias)
			var mw, vw, mb, vb []float64
			for i := range 3 {
				x, y := bs[i][0], bs[i][1]
				ref := cpu.Reference(dense.F64(x), w, b, dense.F64(y), p.B, p.N, p.T, p.opts)
				if _, err := a.Step(x, y); err != nil {
					t.Fatal(err)
				}
				mw, vw = refUpdate(ow, i+1, w, ref.DW, mw, vw)
				mb, vb = refUpdate(ow, i+1, b, ref.DB, mb, vb)
				gw, gb, err := a.Params()
				if err != nil {
					t.Fatal(err)
				}
				w, b = dense.F64(gw), dense.F64(gb)
			}
			W3, b3, err := a.Params()
			if err != nil {
				t.Fatal(err)
			}
			st, err := a.OptimizerState()
			if err != nil {
				t.Fatal(err)
			}
			if st.Kind != o.Kind || st.Step != 3 {
				t.Errorf("state after 3 steps: kind %v, step %d; want %v, 3", st.Kind, st.Step, o.Kind)
			}
			if err := kit.CheckOptimizerState(a.Config(), st); err != nil {
				t.Errorf("the state a layer gives does not fit its own configuration: %v", err)
			}
			want := map[string][]float64{"W." + backend.ExpAvg: mw, "W." + backend.ExpAvgSq: vw, "b." + backend.ExpAvg: mb, "b." + backend.ExpAvgSq: vb}
			if o.Kind == backend.SGD {
				want = map[string][]float64{}
				if o.Momentum != 0 {
					want = map[string][]float64{"W." + backend.MomentumBuffer: mw, "b." + backend.MomentumBuffer: mb}
				}
			}
			if got := slices.Sorted(maps.Keys(st.Tensors)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
				t.Fatalf("state tensors %v, want %v", got, slices.Sorted(maps.Keys(want)))
			}
			for name, v := range want {
				tol.Expect(t, name+" after 3 steps", dense.F64(st.Tensors[name]), v, tol.For(s.dt))
			}

			// The uninterrupted layer's next 3 steps.
			var lossA []float64
			for i := 3; i < 6; i++ {
				l, err := a.Step(bs[i][0], bs[i][1])
				if err != nil {
					t.Fatal(err)
				}
				lossA = append(lossA, l)
			}
			Wa, ba, err := a.Params()
			if err != nil {
				t.Fatal(err)
			}

			// A fresh layer restored from the parameters and state after 3.
			r := s.open(t, p, graph.Want{DW: true, DB: true}, o)
			if err := r.SetParams(W3, b3); err != nil {
				t.Fatal(err)
			}
			if err := r.SetOptimizerState(st); err != nil {
				t.Fatalf("restoring the state a layer of the same configuration gave: %v", err)
			}
			back, err := r.OptimizerState()
			if err != nil {
				t.Fatal(err)
			}
			if back.Kind != st.Kind || back.Step != st.Step || len(back.Tensors) != len(st.Tensors) {
				t.Errorf("state read back: kind %v, step %d, %d tensors; set %v, %d, %d", back.Kind, back.Step, len(back.Tensors), st.Kind, st.Step, len(st.Tensors))
			}
			for name, v := range st.Tensors {
				sameBits(t, name+" read back", dense.F64(back.Tensors[name]), dense.F64(v))
			}
			var lossR []float64
			for i := 3; i < 6; i++ {
				l, err := r.Step(bs[i][0], bs[i][1])
				if err != nil {
					t.Fatal(err)
				}
				lossR = append(lossR, l)
			}
			Wr, br, err := r.Params()
			if err != nil {
				t.Fatal(err)
			}
			sameBits(t, "losses of steps 4-6 after the restore", lossR, lossA)
			sameBits(t, "W after the restore and 3 steps", dense.F64(Wr), dense.F64(Wa))
			sameBits(t, "b after the restore and 3 steps", dense.F64(br), dense.F64(ba))

			// Without the state (a fresh optimizer), the steps differ: the
			// check above can fail.
			if len(want) > 0 {
				f := s.open(t, p, graph.Want{DW: true, DB: true}, o)
				if err := f.SetParams(W3, b3); err != nil {
					t.Fatal(err)
				}
				for i := 3; i < 6; i++ {
					if _, err := f.Step(bs[i][0], bs[i][1]); err != nil {
						t.Fatal(err)
					}
				}
				Wf, _, err := f.Params()
				if err != nil {
					t.Fatal(err)
				}
				if slices.Equal(dense.F64(Wf), dense.F64(Wa)) {
					t.Errorf("a fresh optimizer took the same steps as the restored state: the state carries nothing")
				}
			}

			// SetParams resets the state.
			if err := r.SetParams(W3, b3); err != nil {
				t.Fatal(err)
			}
			if z, err := r.OptimizerState(); err != nil || z.Step != 0 || len(z.Tensors) != 0 {
				t.Errorf("state after SetParams: step %d, %d tensors, err %v; want step 0 and none", z.Step, len(z.Tensors), err)
			}
		})
	}
}

// optimizerStateErrors: a state that cannot belong to the layer is an
// error naming what differs, and the layer keeps the state it had.
func (s *suite) optimizerStateErrors(t *testing.T) {
	p := random(43, 6, 4, 5, graph.LossOptions{})
	want := graph.Want{DW: true, DB: true}
	stepped := func(o backend.Optimizer, q problem) (backend.Layer, backend.OptimizerState) {
		l := s.open(t, q, want, o)
		r := random(44, q.B, q.N, q.T, q.opts)
		if _, err := l.Step(dense.New(s.dt, r.x, q.B, q.N), dense.New(s.dt, r.targets, q.B)); err != nil {
			t.Fatal(err)
		}
		st, err := l.OptimizerState()
		if err != nil {
			t.Fatal(err)
		}
		return l, st
	}
	adam := backend.Optimizer{Kind: backend.Adam, LR: 0.01}
	sgdm := backend.Optimizer{Kind: backend.SGD, LR: 0.1, Momentum: 0.9}
	l, good := stepped(adam, p)
	_, sgdState := stepped(sgdm, p)
	wider := random(45, 6, 4, 6, graph.LossOptions{})
	_, wideState := stepped(adam, wider)
	_, plainSGD := stepped(backend.Optimizer{Kind: backend.SGD, LR: 0.1}, p)

	edit := func(f func(st *backend.OptimizerState)) backend.OptimizerState {
		st := backend.OptimizerState{Kind: good.Kind, Step: good.Step, Tensors: map[string]*tensor.Dense{}}
		for n, v := range good.Tensors {
			st.Tensors[n] = v.Clone().(*tensor.Dense)
		}
		f(&st)
		return st
	}
	other := tensor.Float64
	if s.dt == tensor.Float64 {
		other = tensor.Float32
	}
	for _, c := range []struct {
		name    string
		st      backend.OptimizerState
		wantErr []string
		is      error
	}{
		{"another optimizer", sgdState, []string{"sgd", "adam"}, nil},
		{"another shape", wideState, []string{"W.exp_avg", "shape", "(4, 6)", "(4, 5)"}, nil},
		{"a tensor missing", edit(func(st *backend.OptimizerState) { delete(st.Tensors, "b.exp_avg_sq") }), []string{"b.exp_avg_sq", "missing"}, nil},
		{"an unknown tensor", edit(func(st *backend.OptimizerState) { st.Tensors["W.momentum_buffer"] = st.Tensors["W.exp_avg"] }), []string{"unexpected W.momentum_buffer"}, nil},
		{"tensors of step 0", edit(func(st *backend.OptimizerState) { st.Step = 0 }), []string{"unexpected", "step 0"}, nil},
		{"a negative step", edit(func(st *backend.OptimizerState) { st.Step = -1 }), []string{"step -1"}, nil},
		{"another dtype", edit(func(st *backend.OptimizerState) {
			st.Tensors["W.exp_avg"] = dense.New(other, dense.F64(st.Tensors["W.exp_avg"]), p.N, p.T)
		}), []string{"W.exp_avg", other.String()}, nil},
		{"NaN", edit(func(st *backend.OptimizerState) { setAt(st.Tensors["b.exp_avg"], 2, math.NaN()) }), []string{"b.exp_avg[2]", "NaN"}, backend.ErrNonFinite},
		{"a negative second moment", edit(func(st *backend.OptimizerState) { setAt(st.Tensors["W.exp_avg_sq"], 7, -1) }), []string{"W.exp_avg_sq[1, 2]", "negative"}, nil},
	} {
		before, err := l.OptimizerState()
		if err != nil {
			t.Fatal(err)
		}
		err = l.SetOptimizerState(c.st)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: error %v does not wrap %v", c.name, err, c.is)
		}
		after, err := l.OptimizerState()
		if err != nil {
			t.Fatal(err)
		}
		if after.Step != before.Step || len(after.Tensors) != len(before.Tensors) {
			t.Errorf("%s: a refused state changed the layer's: step %d→%d", c.name, before.Step, after.Step)
		}
		for n, v := range before.Tensors {
			sameBits(t, c.name+": "+n+" after a refused state", dense.F64(after.Tensors[n]), dense.F64(v))
		}
	}
	// SGD without momentum keeps no tensors: a momentum state is refused,
	// its own (a step count alone) restores.
	pl := s.open(t, p, want, backend.Optimizer{Kind: backend.SGD, LR: 0.1})
	if err := pl.SetOptimizerState(sgdState); err == nil || !strings.Contains(err.Error(), "unexpected W.momentum_buffer") {
		t.Errorf("a momentum state given to SGD without momentum: %v", err)
	}
	if err := pl.SetOptimizerState(plainSGD); err != nil {
		t.Errorf("SGD without momentum, its own state: %v", err)
	}
	// A layer without an optimizer has an empty state, and takes one.
	n := s.open(t, p, want, backend.Optimizer{})
	if st, err := n.OptimizerState(); err != nil || st.Kind != backend.NoOptimizer || st.Step != 0 || len(st.Tensors) != 0 {
		t.Errorf("state of a layer without an optimizer: %+v, %v", st, err)
	} else if err := n.SetOptimizerState(st); err != nil {
		t.Errorf("a layer without an optimizer refuses its own empty state: %v", err)
	}
}

// setAt sets element i of a float tensor.
func setAt(t *tensor.Dense, i int, v float64) {
	switch d := t.Data().(type) {
	case []float32:
		d[i] = float32(v)
	case []float64:
		d[i] = v
	}
}
