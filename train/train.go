package train

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"dsx/backend"
	"dsx/data"
	"dsx/dist"
	"dsx/graph"
	"dsx/internal/dense"
	"dsx/model"

	"gorgonia.org/tensor"
)

// Config is everything that changes the result of training.
type Config struct {
	Epochs int // passes over the training set, ≥ 1
	// Batch is the rows per step (the global batch: with P ranks, all of
	// them together), ≥ 1; a set smaller than Batch steps on all its rows.
	Batch int
	// DType is the layer's: tensor.Float32 (the zero value means it) or
	// tensor.Float64.
	DType     tensor.Dtype
	Loss      graph.LossOptions
	Optimizer backend.Optimizer // Kind SGD or Adam
	// Seed draws W and every epoch's permutation of the rows.
	Seed uint64
	// Classes is T; 0 takes the training (and test) set's Classes.
	Classes int
	// ClassNames, when given, name the T classes in the model.
	ClassNames []string
	// Layer holds further backend settings (MatMode, Xent, ChunkRows,
	// MemoryBudget, Storage, VocabTile); its Spec, Optimizer and Comm are
	// set by New.
	Layer backend.Config
	// Scaler, when not nil, is the feature scaling to train with (a
	// Scaler of nil Mean and Std: none) instead of one fitted on the
	// training set: a model's, to go on training it (Trainer.Init), or a
	// checkpoint's (Trainer.Restore).
	Scaler *data.Scaler
}

// Options change nothing in the result of training.
type Options struct {
	// Comm makes this process one rank of a data-parallel job (package
	// dist); nil is a process alone.
	Comm dist.Comm
	// InPlace scales features held in memory once, in place, rather than
	// every batch as it is gathered (mapped features are never written):
	// faster, but the sets then hold scaled features. The values are the
	// same either way.
	InPlace bool
	// Progress is called after every step.
	Progress func(Progress)
	// Epoch is called after every epoch, once the test set is evaluated; an
	// error stops the run with it.
	Epoch func(EpochStats) error
	// Step is called after every step (after Epoch when the step ended an
	// epoch); an error stops the run with it. The trainer's Position and
	// Model are those after the step: the place for a periodic checkpoint.
	Step func(*Trainer) error
	// CheckEvery is the steps between the checks, in a data-parallel job,
	// that every rank holds the same parameters (a checksum compared with
	// rank 0's; they also run at the end of every epoch): 0 means 100, a
	// negative value only at the ends of epochs.
	CheckEvery int
}

// Progress is where a run is, after a step.
type Progress struct {
	Epoch, Epochs  int     // from 1
	Batch, Batches int     // batches done in this epoch, of Batches
	Loss           float64 // mean loss of this epoch's batches so far
}

// EpochStats is one epoch's results.
type EpochStats struct {
	Epoch     int     `json:"epoch"` // from 1
	TrainLoss float64 `json:"train_loss"`
	// TestLoss and TestAccuracy are the test set's (plain cross-entropy)
	// after the epoch; zero without a test set.
	TestLoss     float64 `json:"test_loss,omitempty"`
	TestAccuracy float64 `json:"test_accuracy,omitempty"`
	Seconds      float64 `json:"seconds"` // since Run started
}

// Position is where training stands: the epoch under way (from 0) and
// the batches of it done, and the steps taken in all.
type Position struct {
	Epoch, Batch, Step int
}

// Result is what a Run did.
type Result struct {
	// Epochs are every finished epoch's results, in order (those of
	// earlier Runs of the trainer too).
	Epochs    []EpochStats
	TrainLoss float64 // the last finished epoch's
	// HasTest says TestLoss and TestAccuracy are the last finished
	// epoch's test results.
	HasTest                bool
	TestLoss, TestAccuracy float64
	Seconds                float64 // training and evaluation, this Run
	Examples               int     // training rows stepped on, this Run (all ranks)
	// Stopped says the context ended the run before its last epoch (after a
	// finished step); Position says where.
	Stopped bool
}

// Trainer trains one layer on one data set.
type Trainer struct {
	be          backend.Backend
	cfg         Config
	opts        Options
	comm        dist.Comm
	train, test *data.Set
	T, B        int // classes; global batch
	scaler      *data.Scaler
	trainScale  ScaleFunc
	testScale   ScaleFunc
	layer       backend.Layer
	bt          *Batcher
	src         *rand.PCG
	rng         *rand.Rand

	// The data's fingerprints (data.Set.Fingerprint, of the features as
	// read), for a checkpoint's settings; testFP is "none" without a
	// test set.
	trainFP, testFP string

	// Where the run stands, and what a checkpoint restores exactly.
	pos        Position
	epochStart []byte  // the PCG's state before this epoch's permutation
	perm       []int   // this epoch's permutation (nil between epochs)
	sum        float64 // this epoch's loss × rows, so far
	rows       int     // this epoch's rows so far
	guard      guard
	history    []EpochStats
}

// New fits the feature scaling on trainSet, opens a layer on be and
// draws its initial parameters from cfg.Seed. test may be nil. Close the
// trainer when done.
//
// With a communicator of P > 1 ranks, New is collective: it checks first
// that every rank has the same data shapes, settings, backend and dsx
// build as rank 0 (or every rank returns a *RankError saying what
// differs), and an error on any rank is every rank's *RankError.
func New(be backend.Backend, trainSet, test *data.Set, cfg Config, opts Options) (*Trainer, error) {
	if cfg.DType == (tensor.Dtype{}) {
		cfg.DType = tensor.Float32
	}
	comm := opts.Comm
	if comm == nil || comm.Size() == 1 {
		return newTrainer(be, trainSet, test, cfg, opts)
	}
	if err := agree(comm, checkSame(comm, fingerprintOf(be, trainSet, test, cfg))); err != nil {
		return nil, err
	}
	t, err := newTrainer(be, trainSet, test, cfg, opts)
	if err = agree(comm, err); err != nil {
		if t != nil {
			t.Close()
		}
		return nil, err
	}
	return t, nil
}

func newTrainer(be backend.Backend, trainSet, test *data.Set, cfg Config, opts Options) (*Trainer, error) {
	if cfg.Epochs < 1 || cfg.Batch < 1 {
		return nil, fmt.Errorf("train: epochs %d and batch %d must be ≥ 1", cfg.Epochs, cfg.Batch)
	}
	if cfg.Optimizer.Kind == backend.NoOptimizer {
		return nil, errors.New("train: Config.Optimizer needs a Kind (SGD or Adam)")
	}
	if trainSet == nil || !trainSet.Labelled() {
		return nil, errors.New("train: the training set needs labels")
	}
	if test != nil && test.N != trainSet.N {
		return nil, fmt.Errorf("training data has %d features, test data %d", trainSet.N, test.N)
	}
	if test != nil && !test.Labelled() {
		return nil, fmt.Errorf("%s: the test set needs labels", test.Source)
	}
	T := cfg.Classes
	if T == 0 {
		T = trainSet.Classes
		if test != nil {
			T = max(T, test.Classes)
		}
	}
	if cfg.ClassNames != nil && len(cfg.ClassNames) != T {
		return nil, fmt.Errorf("train: %d class names for %d classes", len(cfg.ClassNames), T)
	}
	comm := opts.Comm
	if comm == nil {
		comm = dist.Local{}
	}
	t := &Trainer{be: be, cfg: cfg, opts: opts, comm: comm, train: trainSet, test: test, T: T,
		B: min(cfg.Batch, trainSet.Rows), guard: guard{T: T}}
	// Fingerprints of the data as read, before any scaling in place.
	var err error
	if t.trainFP, err = trainSet.Fingerprint(); err != nil {
		return nil, err
	}
	t.testFP = "none"
	if test != nil {
		if t.testFP, err = test.Fingerprint(); err != nil {
			return nil, err
		}
	}
	sc := cfg.Scaler
	if sc == nil {
		if sc, err = data.FitScaler(trainSet); err != nil {
			return nil, err
		}
	} else if sc.Mean != nil && (len(sc.Mean) != trainSet.N || len(sc.Std) != trainSet.N) {
		return nil, fmt.Errorf("train: Config.Scaler has %d means and %d stds for %d features", len(sc.Mean), len(sc.Std), trainSet.N)
	}
	t.scaler = sc
	// In float32, as predict scales. Mapped features are never written:
	// their batches are scaled as they are gathered.
	scale := ScaleFunc((&model.Model{N: trainSet.N, Mean: sc.Mean, Std: sc.Std}).ScaleInputs)
	t.trainScale, t.testScale = scale, scale
	if opts.InPlace {
		if t.trainScale, err = scaleOnce(trainSet, scale); err != nil {
			return nil, err
		}
		if t.testScale, err = scaleOnce(test, scale); err != nil {
			return nil, err
		}
	}
	lc := cfg.Layer
	// Each rank's layer holds at most its share of a global batch.
	_, share := dist.Share(t.B, 0, comm.Size())
	lc.Spec = graph.Spec{B: max(share, 1), N: trainSet.N, T: T, DType: cfg.DType, Loss: cfg.Loss, Want: graph.Want{DW: true, DB: true}}
	lc.Optimizer = cfg.Optimizer
	if comm.Size() > 1 {
		lc.Comm = comm
	}
	if t.layer, err = be.Open(lc); err != nil {
		return nil, err
	}
	// W starts small and random (std 0.01), b at zero.
	t.src = rand.NewPCG(cfg.Seed, 0xd5)
	t.rng = rand.New(t.src)
	w0 := make([]float32, trainSet.N*T)
	for i := range w0 {
		w0[i] = float32(t.rng.NormFloat64() * 0.01)
	}
	if err := t.layer.SetParams(dense.New(cfg.DType, w0, trainSet.N, T), dense.New(cfg.DType, make([]float32, T), T)); err != nil {
		t.layer.Close()
		return nil, err
	}
	t.bt = NewBatcher(trainSet, lc.B, cfg.DType, t.trainScale)
	return t, nil
}

// Batches is the number of steps in an epoch.
func (t *Trainer) Batches() int { return (t.train.Rows + t.B - 1) / t.B }

// Classes is T.
func (t *Trainer) Classes() int { return t.T }

// Layer is the layer being trained.
func (t *Trainer) Layer() backend.Layer { return t.layer }

// Scaler is the feature scaling fitted on the training set.
func (t *Trainer) Scaler() *data.Scaler { return t.scaler }

// Position is where training stands.
func (t *Trainer) Position() Position { return t.pos }

// Done reports whether every epoch is finished.
func (t *Trainer) Done() bool { return t.pos.Epoch >= t.cfg.Epochs }

// Close frees the layer.
func (t *Trainer) Close() error { return t.layer.Close() }

// Run trains until every epoch is done, an error, or ctx ends; then it
// stops after the step under way (and, if that step ended an epoch, after
// the epoch's evaluation) and returns with Result.Stopped set. A run that
// diverges returns a *DivergedError. Run may be called again after a stop
// to go on.
func (t *Trainer) Run(ctx context.Context) (*Result, error) {
	res := &Result{}
	start := time.Now()
	batches := t.Batches()
	if t.comm.Size() > 1 {
		// Parameters set after New (Restore, Init) must be every rank's.
		if err := t.checkParams(); err != nil {
			return nil, err
		}
	}
	for !t.Done() {
		if t.stopping(ctx) {
			res.Stopped = true
			break
		}
		if t.perm == nil {
			st, err := t.src.MarshalBinary()
			if err != nil {
				return nil, err
			}
			t.epochStart = st
			t.perm = t.train.Shuffle(t.rng)
			t.sum, t.rows = 0, 0
		}
		e := t.pos.Epoch + 1
		s := t.pos.Batch * t.B
		global := t.perm[s:min(s+t.B, t.train.Rows)]
		// This rank's share of the global batch; none (nil tensors) when
		// the batch has fewer rows than there are ranks.
		lo, hi := dist.Share(len(global), t.comm.Rank(), t.comm.Size())
		var x, y *tensor.Dense
		var err error
		if hi > lo {
			x, y, _, err = t.bt.Batch(global[lo:hi])
		}
		if err != nil {
			return nil, agree(t.comm, t.skip(err))
		}
		loss, err := t.layer.Step(x, y)
		if errors.Is(err, backend.ErrNonFinite) {
			return nil, agree(t.comm, &DivergedError{Epoch: e, Batch: t.pos.Batch + 1, Batches: batches, Why: err.Error()})
		}
		if err != nil {
			return nil, agree(t.comm, fmt.Errorf("epoch %d, batch at row %d: %w", e, s, err))
		}
		if why := t.guard.check(loss); why != "" {
			return nil, &DivergedError{Epoch: e, Batch: t.pos.Batch + 1, Batches: batches, Why: why}
		}
		t.sum += loss * float64(len(global))
		t.rows += len(global)
		res.Examples += len(global)
		t.pos.Batch++
		t.pos.Step++
		if t.opts.Progress != nil {
			t.opts.Progress(Progress{Epoch: e, Epochs: t.cfg.Epochs, Batch: t.pos.Batch, Batches: batches, Loss: t.sum / float64(t.rows)})
		}
		if t.pos.Batch == batches {
			if err := t.endEpoch(start); err != nil {
				return nil, agree(t.comm, err)
			}
		} else if every := t.opts.CheckEvery; t.comm.Size() > 1 && t.pos.Step%cmp.Or(every, 100) == 0 && every >= 0 {
			if err := t.checkParams(); err != nil {
				return nil, err
			}
		}
		if t.opts.Step != nil {
			if err := agree(t.comm, t.opts.Step(t)); err != nil {
				return nil, err
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Epochs = slices.Clone(t.history)
	if n := len(t.history); n > 0 {
		last := t.history[n-1]
		res.TrainLoss, res.TestLoss, res.TestAccuracy, res.HasTest = last.TrainLoss, last.TestLoss, last.TestAccuracy, t.test != nil
	}
	return res, nil
}

// endEpoch checks the parameters, evaluates the test set and records the
// epoch that the last step finished.
func (t *Trainer) endEpoch(start time.Time) error {
	e := t.pos.Epoch + 1
	st := EpochStats{Epoch: e, TrainLoss: t.sum / float64(t.rows)}
	if why, err := finiteParams(t.layer); err != nil {
		return err
	} else if why != "" {
		return &DivergedError{Epoch: e, Batch: t.pos.Batch, Batches: t.Batches(), Why: why}
	}
	if t.comm.Size() > 1 {
		if err := t.checkParams(); err != nil {
			return err
		}
	}
	if t.test != nil {
		var err error
		if st.TestLoss, st.TestAccuracy, err = evaluate(t.layer, t.test, t.testScale, t.comm); err != nil {
			return fmt.Errorf("evaluating after epoch %d: %w", e, err)
		}
	}
	st.Seconds = time.Since(start).Seconds()
	t.history = append(t.history, st)
	t.pos.Epoch++
	t.pos.Batch = 0
	t.perm = nil
	if t.opts.Epoch != nil {
		return agree(t.comm, t.opts.Epoch(st))
	}
	return nil
}

// Model returns the layer's parameters now, with the feature scaling and
// the class names, as a model that model.Save writes and `dsx eval`
// reads. Its metadata says the device, the epochs finished and the
// optimizer, and the last test accuracy when there is a test set.
func (t *Trainer) Model() (*model.Model, error) {
	m, err := ModelOf(t.layer, t.scaler, t.cfg.ClassNames)
	if err != nil {
		return nil, err
	}
	m.Meta = t.meta()
	return m, nil
}

// meta is the model's metadata (see Model).
func (t *Trainer) meta() map[string]string {
	meta := map[string]string{"device": t.be.Name(), "epochs": strconv.Itoa(t.pos.Epoch), "optimizer": t.cfg.Optimizer.Kind.String()}
	if n := len(t.history); n > 0 && t.test != nil {
		meta["test_accuracy"] = strconv.FormatFloat(t.history[n-1].TestAccuracy, 'f', 4, 64)
	}
	return meta
}

// ModelOf returns a layer's parameters as a model (float32, as models
// are saved), with the feature scaling sc (nil: none) and class names
// (nil: none), for a program that runs its own loop.
func ModelOf(l backend.Layer, sc *data.Scaler, classes []string) (*model.Model, error) {
	W, b, err := l.Params()
	if err != nil {
		return nil, err
	}
	cfg := l.Config()
	m := &model.Model{W: dense.F32(W), B: dense.F32(b), N: cfg.N, T: cfg.T, Classes: classes}
	if sc != nil {
		m.Mean, m.Std = sc.Mean, sc.Std
	}
	return m, m.Validate()
}
