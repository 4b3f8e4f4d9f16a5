package train

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/cuda/emu"
	"dsx/data"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// stopAt trains a fresh trainer until the step stop (or the end: 0) and
// returns it with its state.
func stopAt(t *testing.T, cfg Config, test bool, stop int) (*Trainer, *State) {
	t.Helper()
	var cancel context.CancelFunc
	tr, err := New(cpuBackend(t), blobs(230, 6, 4, 1), testSet(test), cfg, Options{InPlace: true, Step: func(tr *Trainer) error {
		if tr.Position().Step == stop {
			cancel()
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	ctx, c := context.WithCancel(context.Background())
	cancel = c
	defer c()
	if _, err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := tr.State()
	if err != nil {
		t.Fatal(err)
	}
	return tr, st
}

func testSet(with bool) *data.Set {
	if !with {
		return nil
	}
	return blobs(70, 6, 4, 2)
}

// resume opens a fresh trainer of cfg on fresh copies of the data (its
// scaling the state's, as dsx train --resume does), restores st and runs
// it to the end.
func resume(t *testing.T, cfg Config, test bool, st *State) (*Trainer, *Result, error) {
	t.Helper()
	cfg.Scaler = &data.Scaler{Mean: st.Mean, Std: st.Std}
	tr, err := New(cpuBackend(t), blobs(230, 6, 4, 1), testSet(test), cfg, Options{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	if err := tr.Restore(st); err != nil {
		return nil, nil, err
	}
	res, err := tr.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tr, res, nil
}

func params(t *testing.T, tr *Trainer) []float64 {
	t.Helper()
	W, b, err := tr.Layer().Params()
	if err != nil {
		t.Fatal(err)
	}
	return append(f64(W), f64(b)...)
}

func f64(d *tensor.Dense) []float64 {
	switch v := d.Data().(type) {
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return slices.Clone(v)
	}
	return nil
}

// A run saved (State, SaveState) mid-epoch, at an epoch's end and before
// its first step, and resumed in a new trainer from the file (LoadState,
// Restore) ends with the uninterrupted run's parameters, bit for bit, and
// its per-epoch history.
func TestStateResumeExact(t *testing.T) {
	for _, c := range []struct {
		name string
		dt   tensor.Dtype
		kind backend.OptimizerKind
		test bool
	}{
		{"f32 adam", tensor.Float32, backend.Adam, true},
		{"f64 sgd", tensor.Float64, backend.SGD, true},
		{"f32 sgd no test", tensor.Float32, backend.SGD, false},
		{"f64 adam no test", tensor.Float64, backend.Adam, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(c.dt, c.kind)
			whole, _ := stopAt(t, cfg, c.test, 0)
			want := params(t, whole)
			wantHist := whole.history
			// 230 rows in batches of 50: 5 steps an epoch; 7 is mid-epoch
			// 2, 10 ends it, 3 is mid-epoch 1.
			for _, stop := range []int{7, 10, 3} {
				_, st := stopAt(t, cfg, c.test, stop)
				path := filepath.Join(t.TempDir(), "run.ckpt")
				if err := SaveState(path, st); err != nil {
					t.Fatal(err)
				}
				back, err := LoadState(path)
				if err != nil {
					t.Fatal(err)
				}
				tr, _, err := resume(t, cfg, c.test, back)
				if err != nil {
					t.Fatalf("stopped at step %d: %v", stop, err)
				}
				got := params(t, tr)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("stopped at step %d and resumed: parameter %d is %v, the uninterrupted run's %v", stop, i, got[i], want[i])
					}
				}
				if len(tr.history) != len(wantHist) {
					t.Fatalf("stopped at step %d: %d epochs of history, want %d", stop, len(tr.history), len(wantHist))
				}
				for i, e := range tr.history {
					w := wantHist[i]
					if e.TrainLoss != w.TrainLoss || e.TestLoss != w.TestLoss || e.TestAccuracy != w.TestAccuracy {
						t.Fatalf("stopped at step %d: epoch %d %+v, want %+v", stop, i+1, e, w)
					}
				}
			}
		})
	}
}

// Restore refuses a state of another run, naming what differs, and
// changes nothing.
func TestRestoreRefuses(t *testing.T) {
	cfg := config(tensor.Float32, backend.Adam)
	_, st := stopAt(t, cfg, true, 7)
	other := cfg
	other.Optimizer.LR = 0.02
	_, _, err := resume(t, other, true, st)
	var se *SettingsError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "lr: 0.01 in the checkpoint, now 0.02") {
		t.Errorf("another lr: %v", err)
	}
	_, _, err = resume(t, cfg, false, st)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "test data: 70 rows × 6 features, 4 classes, crc32c ") || !strings.Contains(err.Error(), "now none") {
		t.Errorf("without the test set: %v", err)
	}
	// Other training data: one label changed.
	tr, err := New(cpuBackend(t), func() *data.Set { s := blobs(230, 6, 4, 1); s.Y[100] = (s.Y[100] + 1) % 4; return s }(), testSet(true),
		func() Config { c := cfg; c.Scaler = &data.Scaler{Mean: st.Mean, Std: st.Std}; return c }(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	before := params(t, tr)
	if err := tr.Restore(st); !errors.As(err, &se) || !strings.HasPrefix(se.Diffs[0], "train data: 230 rows") || len(se.Diffs) != 1 {
		t.Errorf("other training data: %v", err)
	}
	if !slices.Equal(params(t, tr), before) || tr.Position() != (Position{}) {
		t.Errorf("a refused state changed the trainer")
	}
	// The scaling of another run.
	fresh, err := New(cpuBackend(t), blobs(230, 6, 4, 1), testSet(true), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	st2 := *st
	st2.Mean = slices.Clone(st.Mean)
	st2.Mean[0]++
	if err := fresh.Restore(&st2); err == nil || !strings.Contains(err.Error(), "feature scaling") {
		t.Errorf("another scaling: %v", err)
	}
	// Fewer epochs than the checkpoint has done.
	short := cfg
	short.Epochs = 1
	if _, _, err := resume(t, short, true, st); err == nil || !strings.Contains(err.Error(), "beyond the 1 epochs") {
		t.Errorf("fewer epochs: %v", err)
	}
}

// More epochs than the saved run's: the run goes on, and ends where an
// uninterrupted run of that many epochs does.
func TestResumeLonger(t *testing.T) {
	cfg := config(tensor.Float32, backend.SGD)
	_, st := stopAt(t, cfg, false, 0) // finished: 3 epochs
	longer := cfg
	longer.Epochs = 5
	whole, _ := stopAt(t, longer, false, 0)
	tr, res, err := resume(t, longer, false, st)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(params(t, tr), params(t, whole)) || len(res.Epochs) != 5 {
		t.Errorf("3 epochs then 2 more differ from 5 (history of %d epochs)", len(res.Epochs))
	}
}

// Init starts from a model's W and b with a fresh optimizer.
func TestInit(t *testing.T) {
	cfg := config(tensor.Float64, backend.Adam)
	done, _ := stopAt(t, cfg, false, 0)
	m, err := done.Model()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg
	c.Scaler = &data.Scaler{Mean: m.Mean, Std: m.Std}
	tr, err := New(cpuBackend(t), blobs(230, 6, 4, 1), nil, c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Init(m); err != nil {
		t.Fatal(err)
	}
	got := params(t, tr)
	for i, w := range append(slices.Clone(m.W), m.B...) {
		if got[i] != float64(w) {
			t.Fatalf("parameter %d is %v after Init, the model's %v", i, got[i], w)
		}
	}
	if os, _ := tr.Layer().OptimizerState(); os.Step != 0 || len(os.Tensors) != 0 {
		t.Errorf("the optimizer is not fresh after Init: step %d", os.Step)
	}
	// A trainer of another scaling refuses the model.
	plain, err := New(cpuBackend(t), blobs(230, 6, 4, 1), nil, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	m.Std = slices.Clone(m.Std)
	m.Std[1] *= 2
	if err := plain.Init(m); err == nil || !strings.Contains(err.Error(), "feature scaling") {
		t.Errorf("a model of another scaling: %v", err)
	}
}

// A run saved on one device and resumed on another (the CPU, then the
// CUDA backend on its emulator) ends within the conformance suite's
// parity tolerance of the run that stayed on the first.
func TestResumeOnAnotherDevice(t *testing.T) {
	emuBe, err := backend.Get(emu.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dt   tensor.Dtype
		kind backend.OptimizerKind
		tl   tol.Tol
	}{{tensor.Float32, backend.Adam, tol.ParityF32}, {tensor.Float64, backend.SGD, tol.ParityF64}} {
		cfg := config(c.dt, c.kind)
		whole, _ := stopAt(t, cfg, true, 0)
		_, st := stopAt(t, cfg, true, 7)
		rc := cfg
		rc.Scaler = &data.Scaler{Mean: st.Mean, Std: st.Std}
		tr, err := New(emuBe, blobs(230, 6, 4, 1), testSet(true), rc, Options{InPlace: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.Restore(st); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := tol.Close(params(t, tr), params(t, whole), c.tl); err != nil {
			t.Errorf("%v %v: resumed on %s: %v", c.dt, c.kind, emu.Name, err)
		}
	}
}
