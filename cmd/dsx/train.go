package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"dsx/backend"
	"dsx/data"
	"dsx/internal/atomicfile"
	"dsx/internal/checkpoint"
	"dsx/internal/quote"
	"dsx/model"
	"dsx/train"

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

func cmdTrain(args []string, stdout, stderr io.Writer) (err error) {
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
	var cf ckptFlags
	cf.register(fs.FlagSet)
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
	if err := checkNotInput("--out", *out, append(df.inputs(), *namesFile, cf.resume, cf.init)...); err != nil {
		return err
	}
	if err := cf.check(); err != nil {
		return err
	}
	// The checkpoint may be the --resume file (it is by default), not data.
	if err := checkNotInput("--checkpoint", cf.path, append(df.inputs(), *namesFile, cf.init)...); err != nil {
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
	if *classes > 0 { // T is known: --class-weights and --ignore-index are checked against it now
		if _, err := lf.options(*classes); err != nil {
			return err
		}
	}

	// Ranks other than 0 of a data-parallel job print nothing.
	stdout, stderr = quiet(stdout), quiet(stderr)
	// A checkpoint to resume or a model to start from: read (and checked)
	// before the data. They give T and the class names unless the flags do.
	var (
		state   *train.State
		initial *model.Model
		scaler  *data.Scaler
	)
	switch {
	case cf.resume != "":
		if state, err = train.LoadState(cf.resume); err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
		initial = state.Model()
	case cf.init != "":
		if initial, err = model.Load(cf.init); err != nil {
			return fmt.Errorf("--init: %w", err)
		}
	}
	if initial != nil {
		scaler = &data.Scaler{Mean: initial.Mean, Std: initial.Std}
		if *classes == 0 {
			*classes = initial.T
		}
		if names == nil {
			names = initial.Classes
		}
	}
	be, err := chooseDevice(*device, stderr)
	if err != nil {
		return err
	}
	w, err := joinWorld(stderr)
	if err != nil {
		return err
	}
	defer func() { w.end(err) }()
	// From here (the device chosen, the process no longer replaced by
	// dsx-gpu), SIGTERM and SIGINT stop training cleanly.
	stop := newStopper()
	defer stop.stop()
	trainSet, test, err := df.load(loadOpts{classes: *classes}, stderr)
	if err != nil {
		return err
	}
	defer trainSet.Close()
	defer test.Close()
	if initial != nil && initial.N != trainSet.N {
		if state != nil {
			fp, err := trainSet.Fingerprint()
			if err != nil {
				return err
			}
			return fmt.Errorf("--resume %s: %w", cf.resume, &train.SettingsError{Diffs: checkpoint.Diff(
				map[string]string{"train data": state.Settings["train data"]}, map[string]string{"train data": fp})})
		}
		return fmt.Errorf("--init %s: the model has %d features, the training data %d", cf.init, initial.N, trainSet.N)
	}
	T := trainSet.Classes
	if test != nil {
		if test.N != trainSet.N {
			return fmt.Errorf("training data has %d features, test data %d", trainSet.N, test.N)
		}
		T = max(T, test.Classes)
	}
	lossOpts, err := lf.options(T)
	if err != nil {
		return err
	}
	if names == nil && T == 10 && strings.Contains(strings.ToLower(trainSet.Source), "fashion") {
		names = fashionClasses
	}
	cfg := train.Config{Epochs: *epochs, Batch: *batch, DType: dt, Loss: lossOpts, Optimizer: opt, Seed: *seed, Classes: T, ClassNames: names,
		Scaler: scaler}
	var bar *progress
	sv := &saver{f: &cf, last: time.Now(), saved: -1,
		meta: map[string]string{"trained_on": validUTF8(trainSet.Source), "optimizer": *optName}}
	opts := train.Options{
		Comm: w.comm,
		Step: func(tr *train.Trainer) error { return sv.step(tr) },
		// Features in memory of their own are scaled once, in place, not
		// again every epoch (on Fashion-MNIST, rescaling every batch took a
		// third of training).
		InPlace: true,
		Progress: func(p train.Progress) {
			bar.step(fmt.Sprintf("epoch %d/%d loss %.4f", p.Epoch, p.Epochs, p.Loss))
		},
		Epoch: func(e train.EpochStats) error {
			if test == nil {
				bar.line(fmt.Sprintf("epoch %d/%d  train loss %.4f  (%.1f s)", e.Epoch, *epochs, e.TrainLoss, e.Seconds))
			} else {
				bar.line(fmt.Sprintf("epoch %d/%d  train loss %.4f  test loss %.4f  test accuracy %.4f  (%.1f s)",
					e.Epoch, *epochs, e.TrainLoss, e.TestLoss, e.TestAccuracy, e.Seconds))
			}
			return nil
		},
	}
	tr, err := train.New(be, trainSet, test, cfg, opts)
	if err != nil {
		return err
	}
	defer tr.Close()
	switch {
	case state != nil:
		if err := tr.Restore(state); err != nil {
			return fmt.Errorf("--resume %s: %w", cf.resume, err)
		}
		if cf.path == cf.resume {
			sv.saved = state.Position.Step // what the file holds
		}
		fmt.Fprintf(stderr, "dsx: resuming %s from %s\n", where(tr, *epochs), cf.resume)
	case initial != nil:
		if err := tr.Init(initial); err != nil {
			return fmt.Errorf("--init %s: %w", cf.init, err)
		}
	}
	bar = newProgress(stderr, *epochs*tr.Batches())
	sv.bar = bar
	pos := tr.Position()
	bar.done = int64(pos.Epoch*tr.Batches() + pos.Batch)
	res, err := tr.Run(stop.ctx)
	if err != nil {
		bar.clear()
		var de *train.DivergedError
		if errors.As(err, &de) {
			return diverged(err, *out, *lr)
		}
		return err
	}
	// Stopped by a signal, or done: the checkpoint of where training
	// stands, unless the last one saved is of this step.
	var saveErr error
	if cf.path != "" && sv.saved != tr.Position().Step {
		saveErr = sv.save(tr)
	}
	if sig := stopSignal(stop.signal(), res.Stopped, w); res.Stopped && sig != nil {
		bar.clear()
		fmt.Fprintln(stderr, stopped(sig, tr, *epochs, &cf, args, saveErr))
		return &exitError{code: exitCode(sig)}
	}
	if saveErr != nil {
		return saveErr
	}
	m, err := tr.Model()
	if err != nil {
		return err
	}
	for k, v := range sv.meta {
		m.Meta[k] = v
	}
	if w.comm.Size() > 1 {
		m.Meta["ranks"] = strconv.Itoa(w.comm.Size())
	}
	if w.rank0() { // every rank holds the same model; rank 0 writes it
		if err := model.Save(*out, m); err != nil {
			return err
		}
	}
	secs := res.Seconds
	rep := trainReport{Device: be.Name(), DType: dt.String(), Epochs: *epochs, Batch: min(*batch, trainSet.Rows), Optimizer: *optName, LR: *lr,
		TrainRows: trainSet.Rows, Features: trainSet.N, Classes: T, TrainLoss: res.TrainLoss, Seconds: secs,
		ExamplesPerSecond: float64(res.Examples) / secs,
		LoadSeconds:       trainSet.Stats.LoadSeconds, TrainData: reportOf(trainSet), Model: *out}
	if test != nil {
		rep.TestRows, rep.TestLoss, rep.TestAccuracy, rep.TestData = test.Rows, &res.TestLoss, &res.TestAccuracy, reportOf(test)
		rep.LoadSeconds += test.Stats.LoadSeconds
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	result := fmt.Sprintf("train loss %.4f (no test set)", res.TrainLoss)
	if test != nil {
		result = fmt.Sprintf("test accuracy %.4f (test loss %.4f)", res.TestAccuracy, res.TestLoss)
	}
	fmt.Fprintf(stdout, "%s after %d epochs on %s in %.1f s (%.0f examples/s, data read in %.1f s); model saved to %s\n",
		result, *epochs, be.Name(), secs, rep.ExamplesPerSecond, rep.LoadSeconds, *out)
	return nil
}
