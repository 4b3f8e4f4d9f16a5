package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"dsx/backend"
	"dsx/data"
	"dsx/graph"
	"dsx/internal/atomicfile"
	"dsx/internal/dense"
	"dsx/internal/quote"
	"dsx/model"

	"gorgonia.org/tensor"
)

// fashionClasses are Fashion-MNIST's class names, saved in the model when the
// data came from a Fashion-MNIST folder.
var fashionClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

func parseDType(s string) (tensor.Dtype, error) {
	switch s {
	case "float32", "f32", "":
		return tensor.Float32, nil
	case "float64", "f64":
		return tensor.Float64, nil
	}
	return tensor.Float32, usageErr("--dtype %s: want float32 or float64", quote.Value(s))
}

// batcher gathers shuffled rows into reusable tensors of the layer's dtype,
// scaling them there: the set's features stay as read (they may be a
// file's mapped pages, which a write would copy).
type batcher struct {
	set   *data.Set
	scale func(x []float32, rows int) error // nil: none
	dt    tensor.Dtype
	x32   []float32
	y32   []int32
	x64   []float64
	tgt32 []float32
	tgt64 []float64
}

func newBatcher(s *data.Set, B int, dt tensor.Dtype, scale func(x []float32, rows int) error) *batcher {
	b := &batcher{set: s, scale: scale, dt: dt, x32: make([]float32, B*s.N), y32: make([]int32, B)}
	if dt == tensor.Float64 {
		b.x64, b.tgt64 = make([]float64, B*s.N), make([]float64, B)
	} else {
		b.tgt32 = make([]float32, B)
	}
	return b
}

// batch returns rows idx as x (rows×N) and class-index targets (rows). A
// feature that scaling takes out of float32's range is an error naming the
// set's row.
func (b *batcher) batch(idx []int) (x, y *tensor.Dense, labels []int32, err error) {
	n, N := len(idx), b.set.N
	if err := b.set.Batch(idx, b.x32[:n*N], b.y32[:n]); err != nil {
		return nil, nil, nil, err
	}
	if b.scale != nil {
		if err := b.scale(b.x32[:n*N], n); err != nil {
			var se *model.ScaleError
			if errors.As(err, &se) {
				se.Row = idx[se.Row]
			}
			return nil, nil, nil, fmt.Errorf("%s: %w", b.set.Source, err)
		}
	}
	labels = b.y32[:n]
	if b.dt == tensor.Float64 {
		for i, v := range b.x32[:n*N] {
			b.x64[i] = float64(v)
		}
		for i, v := range labels {
			b.tgt64[i] = float64(v)
		}
		return tensor.New(tensor.WithShape(n, N), tensor.WithBacking(b.x64[:n*N])),
			tensor.New(tensor.WithShape(n), tensor.WithBacking(b.tgt64[:n])), labels, nil
	}
	for i, v := range labels {
		b.tgt32[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(n, N), tensor.WithBacking(b.x32[:n*N])),
		tensor.New(tensor.WithShape(n), tensor.WithBacking(b.tgt32[:n])), labels, nil
}

// scaleOnce scales a set whose features are its own memory in place, and
// returns nil (nothing left to do per batch); for mapped features, which
// must stay unwritten, it returns scale for the batcher. A nil set needs
// nothing.
func scaleOnce(s *data.Set, scale func(x []float32, rows int) error) (func(x []float32, rows int) error, error) {
	if s == nil || s.Stats.Mapped {
		return scale, nil
	}
	if err := scale(s.X, s.Rows); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Source, err)
	}
	return nil, nil
}

// validUTF8 is s, or s quoted with its invalid bytes escaped (\xff) when
// it is not valid UTF-8 (a file name can be any bytes; model metadata must
// be UTF-8).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strconv.Quote(s)
}

// trainReport is train --json's summary. Without a test set (no --test)
// the test_* fields are absent.
type trainReport struct {
	Device            string      `json:"device"`
	DType             string      `json:"dtype"`
	Epochs            int         `json:"epochs"`
	Batch             int         `json:"batch"`
	Optimizer         string      `json:"optimizer"`
	LR                float64     `json:"lr"`
	TrainRows         int         `json:"train_rows"`
	TestRows          int         `json:"test_rows,omitempty"`
	Features          int         `json:"features"`
	Classes           int         `json:"classes"`
	TrainLoss         float64     `json:"train_loss"` // the mean over the last epoch's batches
	TestLoss          *float64    `json:"test_loss,omitempty"`
	TestAccuracy      *float64    `json:"test_accuracy,omitempty"`
	Seconds           float64     `json:"seconds"` // training, without loading
	ExamplesPerSecond float64     `json:"examples_per_second"`
	LoadSeconds       float64     `json:"load_seconds"` // reading both sets
	TrainData         *dataReport `json:"train_data"`
	TestData          *dataReport `json:"test_data,omitempty"`
	Model             string      `json:"model,omitempty"`
}

func cmdTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", `Train the classifier head (logits = x·W + b, softmax cross-entropy) on
(Fashion-)MNIST IDX files, CSV, .npy or safetensors features, with features
standardised on the training set, and save W, b, the scaling and the class
names as safetensors. A .npy or safetensors features array of shape
(rows, d1, d2, ...) is read as rows of d1·d2·... features, as IDX images
are. Without --test, only the training loss is reported.

  dsx train --train x.npy --train-labels y.npy --test xt.npy --test-labels yt.npy
  dsx train --train d.safetensors --test t.safetensors   # tensors "features" and "labels"
  dsx train --train d.safetensors --features-tensor emb --labels-tensor cls --test xt.npy --test-labels yt.npy`, stdout)
	var df dataFlags
	df.register(fs.FlagSet, true)
	var lf lossFlags
	lf.register(fs.FlagSet)
	out := fs.String("out", "model.safetensors", "model `file` to write (atomically)")
	device := fs.String("device", "", "auto, cpu or cuda (default $DSX_DEVICE or auto)")
	dtype := fs.String("dtype", "float32", "float32 or float64")
	epochs := fs.Int("epochs", 15, "passes over the training set")
	batch := fs.Int("batch", 256, "rows per mini-batch")
	optName := fs.String("optimizer", "adam", "sgd or adam")
	lr := fs.Float64("lr", 0.0005, "learning rate")
	momentum := fs.Float64("momentum", 0.9, "SGD momentum")
	wd := fs.Float64("weight-decay", 0, "weight decay (L2 added to the gradient)")
	adamw := fs.Bool("adamw", false, "decoupled weight decay (AdamW)")
	seed := fs.Uint64("seed", 1, "seed for initialisation and shuffling")
	classes := fs.Int("classes", 0, fmt.Sprintf("number of classes `T` (default: largest label + 1, at most %d)", data.MaxInferredClasses))
	namesFile := fs.String("class-names", "", "`file` of class names, one per line, saved in the model (sets T when --classes is not given)")
	asJSON := fs.Bool("json", false, "print one JSON object at the end")
	if err := parse(fs, args); err != nil {
		return err
	}

	// Everything that can be checked from the command line, before the
	// device is chosen or any data are read.
	if *epochs < 1 || *batch < 1 {
		return usageErr("--epochs and --batch must be ≥ 1")
	}
	if *classes < 0 {
		return usageErr("--classes %d: want T ≥ 1", *classes)
	}
	if *out == "" {
		return usageErr("--out FILE is empty")
	}
	// Where the model goes is checked now, not after the last epoch.
	if err := atomicfile.Check(*out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := checkNotInput(*out, append(df.inputs(), *namesFile)...); err != nil {
		return err
	}
	dt, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	if err := df.check(); err != nil {
		return err
	}
	if _, err := lf.options(0); err != nil {
		return err
	}
	if err := positive(map[string]float64{"lr": *lr}); err != nil {
		return err
	}
	if err := nonNegative(map[string]float64{"momentum": *momentum}); err != nil {
		return err
	}
	kind, err := backend.ParseOptimizerKind(*optName)
	if err != nil || kind == backend.NoOptimizer { // training needs one
		return usageErr("optimizer %s: want sgd or adam", quote.Value(*optName))
	}
	opt := backend.Optimizer{Kind: kind, LR: *lr, WeightDecay: *wd, Decoupled: *adamw}
	if kind == backend.SGD {
		opt.Momentum = *momentum
	}
	if err := opt.Validate(); err != nil {
		return usageErr("%v", err)
	}
	var names []string
	if *namesFile != "" {
		if names, err = readClassNames(*namesFile, *classes); err != nil {
			return err
		}
		if *classes == 0 {
			*classes = len(names)
		} else if *classes != len(names) {
			return usageErr("--classes %d but %s names %d classes", *classes, *namesFile, len(names))
		}
	}

	be, err := chooseDevice(*device, stderr)
	if err != nil {
		return err
	}
	train, test, err := df.load(loadOpts{classes: *classes}, stderr)
	if err != nil {
		return err
	}
	defer train.Close()
	defer test.Close()
	T := train.Classes
	if test != nil {
		if test.N != train.N {
			return fmt.Errorf("training data has %d features, test data %d", train.N, test.N)
		}
		T = max(T, test.Classes)
	}
	lossOpts, err := lf.options(T)
	if err != nil {
		return err
	}
	sc, err := data.FitScaler(train)
	if err != nil {
		return err
	}
	// In float32 as predict does. Mapped features are never written: their
	// batches are scaled as they are gathered. Features in memory of their
	// own are scaled once, in place, not again every epoch (on
	// Fashion-MNIST, rescaling every batch took a third of training).
	scale := (&model.Model{N: train.N, Mean: sc.Mean, Std: sc.Std}).ScaleInputs
	trainScale, err := scaleOnce(train, scale)
	if err != nil {
		return err
	}
	testScale, err := scaleOnce(test, scale)
	if err != nil {
		return err
	}
	B := min(*batch, train.Rows)
	layer, err := be.Open(backend.Config{
		Spec:      graph.Spec{B: B, N: train.N, T: T, DType: dt, Loss: lossOpts, Want: graph.Want{DW: true, DB: true}},
		Optimizer: opt,
	})
	if err != nil {
		return err
	}
	defer layer.Close()
	// W starts small and random (std 0.01), b at zero.
	rng := rand.New(rand.NewPCG(*seed, 0xd5))
	w0 := make([]float32, train.N*T)
	for i := range w0 {
		w0[i] = float32(rng.NormFloat64() * 0.01)
	}
	if err := layer.SetParams(dense.New(dt, w0, train.N, T), dense.New(dt, make([]float32, T), T)); err != nil {
		return err
	}
	bt := newBatcher(train, B, dt, trainScale)
	batches := (train.Rows + B - 1) / B
	bar := newProgress(stderr, *epochs*batches)
	guard := divergenceGuard{T: T, out: *out, lr: *lr}
	start := time.Now()
	var trainLoss, testLoss, testAcc float64
	for e := 1; e <= *epochs; e++ {
		perm := train.Shuffle(rng)
		sum, n := 0.0, 0
		for s := 0; s < train.Rows; s += B {
			idx := perm[s:min(s+B, train.Rows)]
			x, y, _, err := bt.batch(idx)
			if err != nil {
				bar.clear()
				return err
			}
			loss, err := layer.Step(x, y)
			if errors.Is(err, backend.ErrNonFinite) {
				bar.clear()
				return guard.diverged(e, s/B+1, batches, err.Error())
			}
			if err != nil {
				return fmt.Errorf("epoch %d, batch at row %d: %w", e, s, err)
			}
			if why := guard.check(loss); why != "" {
				bar.clear()
				return guard.diverged(e, s/B+1, batches, why)
			}
			sum += loss * float64(len(idx))
			n += len(idx)
			bar.step(fmt.Sprintf("epoch %d/%d loss %.4f", e, *epochs, sum/float64(n)))
		}
		trainLoss = sum / float64(n)
		if why, err := finiteParams(layer); err != nil {
			return err
		} else if why != "" {
			bar.clear()
			return guard.diverged(e, batches, batches, why)
		}
		if test == nil {
			bar.line(fmt.Sprintf("epoch %d/%d  train loss %.4f  (%.1f s)", e, *epochs, trainLoss, time.Since(start).Seconds()))
			continue
		}
		if testLoss, testAcc, err = evaluate(layer, test, testScale); err != nil {
			return fmt.Errorf("evaluating after epoch %d: %w", e, err)
		}
		bar.line(fmt.Sprintf("epoch %d/%d  train loss %.4f  test loss %.4f  test accuracy %.4f  (%.1f s)",
			e, *epochs, trainLoss, testLoss, testAcc, time.Since(start).Seconds()))
	}
	secs := time.Since(start).Seconds()
	W, b, err := layer.Params()
	if err != nil {
		return err
	}
	m := &model.Model{W: dense.F32(W), B: dense.F32(b), N: train.N, T: T, Mean: sc.Mean, Std: sc.Std, Classes: names,
		Meta: map[string]string{
			"device": be.Name(), "epochs": strconv.Itoa(*epochs), "optimizer": *optName, "trained_on": validUTF8(train.Source),
		}}
	if test != nil {
		m.Meta["test_accuracy"] = strconv.FormatFloat(testAcc, 'f', 4, 64)
	}
	if names == nil && T == 10 && strings.Contains(strings.ToLower(train.Source), "fashion") {
		m.Classes = fashionClasses
	}
	if err := model.Save(*out, m); err != nil {
		return err
	}
	rep := trainReport{Device: be.Name(), DType: dt.String(), Epochs: *epochs, Batch: B, Optimizer: *optName, LR: *lr,
		TrainRows: train.Rows, Features: train.N, Classes: T, TrainLoss: trainLoss, Seconds: secs,
		ExamplesPerSecond: float64(*epochs*train.Rows) / secs,
		LoadSeconds:       train.Stats.LoadSeconds, TrainData: reportOf(train), Model: *out}
	if test != nil {
		rep.TestRows, rep.TestLoss, rep.TestAccuracy, rep.TestData = test.Rows, &testLoss, &testAcc, reportOf(test)
		rep.LoadSeconds += test.Stats.LoadSeconds
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	result := fmt.Sprintf("train loss %.4f (no test set)", trainLoss)
	if test != nil {
		result = fmt.Sprintf("test accuracy %.4f (test loss %.4f)", testAcc, testLoss)
	}
	fmt.Fprintf(stdout, "%s after %d epochs on %s in %.1f s (%.0f examples/s, data read in %.1f s); model saved to %s\n",
		result, *epochs, be.Name(), secs, rep.ExamplesPerSecond, rep.LoadSeconds, *out)
	return nil
}
