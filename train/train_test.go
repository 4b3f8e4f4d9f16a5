package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"dsx/backend"
	_ "dsx/cpu"
	"dsx/data"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/internal/tol"

	"gorgonia.org/tensor"
)

// blobs is a labelled set of T Gaussian blobs in N dimensions whose
// centres lie far from the origin, so that training needs the scaler.
func blobs(rows, N, T int, seed uint64) *data.Set {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &data.Set{Rows: rows, N: N, Classes: T, Source: "blobs"}
	for i := 0; i < rows; i++ {
		c := rng.IntN(T)
		s.Y = append(s.Y, int32(c))
		for j := 0; j < N; j++ {
			centre := 50.0
			if j%T == c {
				centre += 4
			}
			s.X = append(s.X, float32(centre+rng.NormFloat64()))
		}
	}
	return s
}

func cpuBackend(t *testing.T) backend.Backend {
	t.Helper()
	be, _, err := backend.Choose("cpu")
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func config(dt tensor.Dtype, kind backend.OptimizerKind) Config {
	o := backend.Optimizer{Kind: kind, LR: 0.01}
	if kind == backend.SGD {
		o.LR, o.Momentum = 0.1, 0.9
	}
	return Config{Epochs: 3, Batch: 50, DType: dt, Optimizer: o, Seed: 3}
}

// run trains a fresh copy of the sets to the end, stopping (and going on
// with the same trainer) after the steps in stops, and returns the model's
// W and b and the per-epoch results.
func run(t *testing.T, cfg Config, withTest bool, stops ...int) ([]float32, []float32, []EpochStats) {
	t.Helper()
	tr, test := blobs(230, 6, 4, 1), blobs(70, 6, 4, 2)
	if !withTest {
		test = nil
	}
	var cancel context.CancelFunc // the running Run's
	trainer, err := New(cpuBackend(t), tr, test, cfg, Options{InPlace: true, Step: func(tr *Trainer) error {
		if slices.Contains(stops, tr.Position().Step) {
			cancel()
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer trainer.Close()
	var history []EpochStats
	for runs := 0; ; runs++ {
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		res, err := trainer.Run(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		history = res.Epochs
		if !res.Stopped {
			if runs != len(stops) {
				t.Fatalf("stopped %d times, want %d (at steps %v)", runs, len(stops), stops)
			}
			break
		}
	}
	m, err := trainer.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m.W, m.B, history
}

// A run stopped by its context (mid-epoch, at an epoch's end) and run
// again to the end gives the uninterrupted run's model, bit for bit, and
// the same per-epoch results; so do two runs of the same Config.
func TestStopAndGoOnExact(t *testing.T) {
	for _, c := range []struct {
		name string
		dt   tensor.Dtype
		kind backend.OptimizerKind
		test bool
	}{
		{"f32 adam", tensor.Float32, backend.Adam, true},
		{"f64 sgd", tensor.Float64, backend.SGD, true},
		{"f32 sgd no test", tensor.Float32, backend.SGD, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(c.dt, c.kind)
			W0, b0, h0 := run(t, cfg, c.test)
			W1, b1, h1 := run(t, cfg, c.test)
			// 230 rows in batches of 50: 5 steps an epoch; 7 is mid-epoch 2, 10 ends it.
			W2, b2, h2 := run(t, cfg, c.test, 7, 10)
			for _, got := range []struct {
				W, b []float32
				h    []EpochStats
			}{{W1, b1, h1}, {W2, b2, h2}} {
				if !slices.Equal(got.W, W0) || !slices.Equal(got.b, b0) {
					t.Fatal("the parameters differ from the uninterrupted run's")
				}
				if len(got.h) != len(h0) {
					t.Fatalf("%d epochs recorded, want %d", len(got.h), len(h0))
				}
				for i := range h0 {
					if got.h[i].TrainLoss != h0[i].TrainLoss || got.h[i].TestLoss != h0[i].TestLoss || got.h[i].TestAccuracy != h0[i].TestAccuracy {
						t.Fatalf("epoch %d: %+v, want %+v", i+1, got.h[i], h0[i])
					}
				}
			}
		})
	}
}

// Training learns: on separable blobs, the test loss falls below a tenth
// of log T (the loss of a uniform guess) and the accuracy reaches 0.95.
func TestLearns(t *testing.T) {
	cfg := config(tensor.Float32, backend.Adam)
	cfg.Epochs, cfg.Optimizer.LR = 20, 0.05
	_, _, h := run(t, cfg, true)
	last := h[len(h)-1]
	if last.TestLoss > 0.1*math.Log(4) || last.TestAccuracy < 0.95 {
		t.Fatalf("after %d epochs: test loss %.4f, accuracy %.3f", len(h), last.TestLoss, last.TestAccuracy)
	}
	if h[0].TrainLoss <= last.TrainLoss {
		t.Fatalf("the training loss rose from %.4f to %.4f", h[0].TrainLoss, last.TrainLoss)
	}
}

// A learning rate far too large stops the run with a *DivergedError that
// says where.
func TestDiverged(t *testing.T) {
	cfg := config(tensor.Float32, backend.SGD)
	cfg.Optimizer.LR = 1e30
	tr, err := New(cpuBackend(t), blobs(230, 6, 4, 1), nil, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	_, err = tr.Run(context.Background())
	var de *DivergedError
	if !errors.As(err, &de) || de.Epoch != 1 || de.Batches != 5 || de.Batch < 2 {
		t.Fatalf("got %v, want a divergence in epoch 1 after its first batch", err)
	}
}

// Evaluate against a float64 reference: the mean of log-sum-exp(z) − z[y]
// and the share of rows whose largest logit is their label's.
func TestEvaluate(t *testing.T) {
	s := blobs(37, 3, 5, 4)
	be := cpuBackend(t)
	l, err := be.Open(backend.Config{Spec: graph.Spec{B: 8, N: 3, T: 5, DType: tensor.Float32}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rng := rand.New(rand.NewPCG(5, 5))
	W, b := make([]float32, 15), make([]float32, 5)
	for i := range W {
		W[i] = float32(rng.NormFloat64() * 0.1)
	}
	b[2] = 0.5
	if err := l.SetParams(dense.New(tensor.Float32, W, 3, 5), dense.New(tensor.Float32, b, 5)); err != nil {
		t.Fatal(err)
	}
	loss, acc, err := Evaluate(l, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wantLoss, wantAcc float64
	for r := 0; r < s.Rows; r++ {
		z := make([]float64, 5)
		best := 0
		for c := range z {
			z[c] = float64(b[c])
			for j := 0; j < 3; j++ {
				z[c] += float64(s.X[r*3+j]) * float64(W[j*5+c])
			}
			if z[c] > z[best] {
				best = c
			}
		}
		lse := 0.0
		for _, v := range z {
			lse += math.Exp(v - z[best])
		}
		wantLoss += math.Log(lse) + z[best] - z[s.Y[r]]
		if best == int(s.Y[r]) {
			wantAcc++
		}
	}
	wantLoss /= float64(s.Rows)
	wantAcc /= float64(s.Rows)
	// The layer's logits are float32 products; the loss is summed in float64.
	if err := tol.Close([]float64{loss}, []float64{wantLoss}, tol.F32); err != nil || acc != wantAcc {
		t.Fatalf("Evaluate = %.6f, %.4f; want %.6f, %.4f (%v)", loss, acc, wantLoss, wantAcc, err)
	}
}

func TestTargets(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		y := Targets([]int32{2, 0, 7}, dt)
		if y.Dtype() != dt || !slices.Equal(y.Shape(), tensor.Shape{3}) || !slices.Equal(dense.F64(y), []float64{2, 0, 7}) {
			t.Fatalf("Targets(%v) = %v %v", dt, y.Dtype(), y)
		}
	}
}

// Bad arguments are errors that say what is wrong, before any work.
func TestNewErrors(t *testing.T) {
	be := cpuBackend(t)
	good := config(tensor.Float32, backend.Adam)
	unlabelled := blobs(10, 3, 2, 1)
	unlabelled.Y = nil
	for _, c := range []struct {
		name        string
		train, test *data.Set
		edit        func(*Config)
		want        string
	}{
		{"no epochs", blobs(10, 3, 2, 1), nil, func(c *Config) { c.Epochs = 0 }, "epochs 0"},
		{"no optimizer", blobs(10, 3, 2, 1), nil, func(c *Config) { c.Optimizer.Kind = backend.NoOptimizer }, "Optimizer"},
		{"unlabelled", unlabelled, nil, func(*Config) {}, "needs labels"},
		{"features", blobs(10, 3, 2, 1), blobs(10, 4, 2, 1), func(*Config) {}, "3 features, test data 4"},
		{"names", blobs(10, 3, 2, 1), nil, func(c *Config) { c.ClassNames = []string{"a"} }, "1 class names for 2 classes"},
	} {
		cfg := good
		c.edit(&cfg)
		tr, err := New(be, c.train, c.test, cfg, Options{})
		if err == nil {
			tr.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
