package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"dsx/backend"
	"dsx/data"
	"dsx/graph"
	"dsx/model"

	"gorgonia.org/tensor"
)

// fashionClasses are Fashion-MNIST's class names, saved in the model when the
// data came from a Fashion-MNIST folder.
var fashionClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// dataFlags are the flags every command that reads data shares.
type dataFlags struct{ dir, train, test string }

func (d *dataFlags) register(fs interface {
	StringVar(*string, string, string, string)
}, withTrain bool) {
	fs.StringVar(&d.dir, "data", "", "folder with the four (Fashion-)MNIST IDX files, gzipped or not (default: Debian's dataset-fashion-mnist)")
	if withTrain {
		fs.StringVar(&d.train, "train", "", "training CSV (label,features...) instead of --data")
	}
	fs.StringVar(&d.test, "test", "", "test CSV (label,features...) instead of --data")
}

// load returns the training and test sets (train is nil when !needTrain).
func (d *dataFlags) load(needTrain bool) (train, test *data.Set, err error) {
	if d.train != "" || d.test != "" {
		if d.dir != "" {
			return nil, nil, usageErr("give either --data or --train/--test, not both")
		}
		if needTrain && d.train == "" {
			return nil, nil, usageErr("--test without --train")
		}
		if d.test == "" {
			return nil, nil, usageErr("--train without --test")
		}
		if needTrain {
			if train, err = data.LoadCSV(d.train, 0); err != nil {
				return nil, nil, err
			}
		}
		classes := 0
		if train != nil {
			classes = train.Classes
		}
		if test, err = data.LoadCSV(d.test, classes); err != nil {
			return nil, nil, err
		}
		return train, test, nil
	}
	dir := d.dir
	if dir == "" {
		for _, c := range data.DefaultDirs() {
			if _, err := os.Stat(c); err == nil {
				dir = c
				break
			}
		}
		if dir == "" {
			return nil, nil, fmt.Errorf("no data: give --data DIR or --train/--test FILE, or install Debian's dataset-fashion-mnist (looked in %s)", strings.Join(data.DefaultDirs(), ", "))
		}
	}
	train, test, err = data.LoadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	if train.N != test.N {
		return nil, nil, fmt.Errorf("%s: training rows have %d features, test rows %d", dir, train.N, test.N)
	}
	return train, test, nil
}

// lossFlags are the options of torch.nn.CrossEntropyLoss.
type lossFlags struct {
	reduction, weights string
	ignore             int
	smoothing          float64
}

func (l *lossFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	Float64Var(*float64, string, float64, string)
}) {
	fs.StringVar(&l.reduction, "reduction", "mean", "loss reduction: mean, sum or none (none trains on the sum)")
	fs.StringVar(&l.weights, "class-weights", "", "comma-separated weight per class")
	fs.IntVar(&l.ignore, "ignore-index", math.MinInt, "label whose rows are ignored (default: none)")
	fs.Float64Var(&l.smoothing, "label-smoothing", 0, "label smoothing ε in [0, 1]")
}

func (l *lossFlags) options(T int) (graph.LossOptions, error) {
	red, err := graph.ParseReduction(l.reduction)
	if err != nil {
		return graph.LossOptions{}, usageErr("%v", err)
	}
	o := graph.LossOptions{Reduction: red, LabelSmoothing: l.smoothing}
	if l.ignore != math.MinInt {
		o.UseIgnoreIndex, o.IgnoreIndex = true, l.ignore
	}
	if l.weights != "" {
		for i, f := range strings.Split(l.weights, ",") {
			w, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return o, usageErr("--class-weights: item %d %q is not a number", i+1, f)
			}
			o.ClassWeights = append(o.ClassWeights, w)
		}
	}
	if err := o.Validate(T); err != nil {
		return o, usageErr("%v", err)
	}
	return o, nil
}

func parseDType(s string) (tensor.Dtype, error) {
	switch s {
	case "float32", "f32", "":
		return tensor.Float32, nil
	case "float64", "f64":
		return tensor.Float64, nil
	}
	return tensor.Float32, usageErr("--dtype %q: want float32 or float64", s)
}

// batcher gathers shuffled rows into reusable tensors of the layer's dtype.
type batcher struct {
	set   *data.Set
	dt    tensor.Dtype
	x32   []float32
	y32   []int32
	x64   []float64
	tgt32 []float32
	tgt64 []float64
}

func newBatcher(s *data.Set, B int, dt tensor.Dtype) *batcher {
	b := &batcher{set: s, dt: dt, x32: make([]float32, B*s.N), y32: make([]int32, B)}
	if dt == tensor.Float64 {
		b.x64, b.tgt64 = make([]float64, B*s.N), make([]float64, B)
	} else {
		b.tgt32 = make([]float32, B)
	}
	return b
}

// batch returns rows idx as x (rows×N) and class-index targets (rows).
func (b *batcher) batch(idx []int) (x, y *tensor.Dense, labels []int32) {
	n, N := len(idx), b.set.N
	b.set.Batch(idx, b.x32[:n*N], b.y32[:n])
	labels = b.y32[:n]
	if b.dt == tensor.Float64 {
		for i, v := range b.x32[:n*N] {
			b.x64[i] = float64(v)
		}
		for i, v := range labels {
			b.tgt64[i] = float64(v)
		}
		return tensor.New(tensor.WithShape(n, N), tensor.WithBacking(b.x64[:n*N])),
			tensor.New(tensor.WithShape(n), tensor.WithBacking(b.tgt64[:n])), labels
	}
	for i, v := range labels {
		b.tgt32[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(n, N), tensor.WithBacking(b.x32[:n*N])),
		tensor.New(tensor.WithShape(n), tensor.WithBacking(b.tgt32[:n])), labels
}

// evaluate returns the mean plain cross-entropy and the accuracy of the layer
// on a set, in batches of the layer's B.
func evaluate(l backend.Layer, s *data.Set) (loss, acc float64, pred []int32, err error) {
	B := l.Config().B
	bt := newBatcher(s, B, l.Config().DType)
	idx := make([]int, B)
	pred = make([]int32, s.Rows)
	plain := graph.LossOptions{}
	correct, sum := 0, 0.0
	for start := 0; start < s.Rows; start += B {
		n := min(B, s.Rows-start)
		for i := range idx[:n] {
			idx[i] = start + i
		}
		x, _, labels := bt.batch(idx[:n])
		logits, err := l.Logits(x)
		if err != nil {
			return 0, 0, nil, err
		}
		z := toF64(logits)
		T := len(z) / n
		for i := 0; i < n; i++ {
			row := z[i*T : (i+1)*T]
			best := 0
			for c, v := range row {
				if v > row[best] {
					best = c
				}
			}
			pred[start+i] = int32(best)
			if int32(best) == labels[i] {
				correct++
			}
			if int(labels[i]) < T {
				rl, _ := graph.RowLoss(row, int(labels[i]), nil, &plain)
				sum += rl
			}
		}
	}
	return sum / float64(s.Rows), float64(correct) / float64(s.Rows), pred, nil
}

func toF64(t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float64:
		return d
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}

func toF32(t *tensor.Dense) []float32 {
	switch d := t.Data().(type) {
	case []float32:
		return append([]float32(nil), d...)
	case []float64:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out
	}
	return nil
}

// fromF32 makes a tensor of dtype dt from float32 values.
func fromF32(v []float32, dt tensor.Dtype, shape ...int) *tensor.Dense {
	if dt == tensor.Float64 {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), v...)))
}

type trainReport struct {
	Device            string  `json:"device"`
	DType             string  `json:"dtype"`
	Epochs            int     `json:"epochs"`
	Batch             int     `json:"batch"`
	Optimizer         string  `json:"optimizer"`
	LR                float64 `json:"lr"`
	TrainRows         int     `json:"train_rows"`
	TestRows          int     `json:"test_rows"`
	Features          int     `json:"features"`
	Classes           int     `json:"classes"`
	TrainLoss         float64 `json:"train_loss"`
	TestLoss          float64 `json:"test_loss"`
	TestAccuracy      float64 `json:"test_accuracy"`
	Seconds           float64 `json:"seconds"`
	ExamplesPerSecond float64 `json:"examples_per_second"`
	Model             string  `json:"model,omitempty"`
}

func cmdTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", `Train the classifier head (logits = x·W + b, softmax cross-entropy) on
(Fashion-)MNIST IDX files or CSV, with features standardised on the training
set, and save W, b and the scaling as safetensors.`, stdout)
	var df dataFlags
	df.register(fs, true)
	var lf lossFlags
	lf.register(fs)
	out := fs.String("out", "model.safetensors", "model file to write (atomically)")
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
	asJSON := fs.Bool("json", false, "print one JSON object at the end")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *epochs < 1 || *batch < 1 {
		return usageErr("--epochs and --batch must be ≥ 1")
	}
	dt, err := parseDType(*dtype)
	if err != nil {
		return err
	}
	be, err := chooseDevice(*device, stderr)
	if err != nil {
		return err
	}
	train, test, err := df.load(true)
	if err != nil {
		return err
	}
	if test.N != train.N {
		return fmt.Errorf("training data has %d features, test data %d", train.N, test.N)
	}
	T := max(train.Classes, test.Classes)
	lossOpts, err := lf.options(T)
	if err != nil {
		return err
	}
	sc := data.FitScaler(train)
	if err := sc.Apply(train); err != nil {
		return err
	}
	if err := sc.Apply(test); err != nil {
		return err
	}
	opt := backend.Optimizer{Kind: *optName, LR: *lr, WeightDecay: *wd, Decoupled: *adamw}
	if *optName == "sgd" {
		opt.Momentum = *momentum
	}
	B := min(*batch, train.Rows)
	layer, err := be.Open(backend.Config{
		Spec:      graph.Spec{B: B, N: train.N, T: T, DType: dt, Loss: lossOpts, Want: graph.Want{W: true, B: true}},
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
	if err := layer.SetParams(fromF32(w0, dt, train.N, T), fromF32(make([]float32, T), dt, T)); err != nil {
		return err
	}
	bt := newBatcher(train, B, dt)
	bar := newProgress(stderr, *epochs*((train.Rows+B-1)/B))
	start := time.Now()
	var trainLoss, testLoss, testAcc float64
	for e := 1; e <= *epochs; e++ {
		perm := train.Shuffle(rng)
		sum, n := 0.0, 0
		for s := 0; s < train.Rows; s += B {
			idx := perm[s:min(s+B, train.Rows)]
			x, y, _ := bt.batch(idx)
			loss, err := layer.Step(x, y)
			if err != nil {
				return fmt.Errorf("epoch %d, batch at row %d: %w", e, s, err)
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return fmt.Errorf("epoch %d, batch at row %d: loss is %v (try a smaller --lr)", e, s, loss)
			}
			sum += loss * float64(len(idx))
			n += len(idx)
			bar.step(fmt.Sprintf("epoch %d/%d loss %.4f", e, *epochs, sum/float64(n)))
		}
		trainLoss = sum / float64(n)
		if testLoss, testAcc, _, err = evaluate(layer, test); err != nil {
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
	m := &model.Model{W: toF32(W), B: toF32(b), N: train.N, T: T, Mean: sc.Mean, Std: sc.Std,
		Meta: map[string]string{
			"device": be.Name(), "epochs": strconv.Itoa(*epochs), "optimizer": *optName,
			"test_accuracy": strconv.FormatFloat(testAcc, 'f', 4, 64), "trained_on": train.Source,
		}}
	if T == 10 && strings.Contains(strings.ToLower(train.Source), "fashion") {
		m.Classes = fashionClasses
	}
	if err := model.Save(*out, m); err != nil {
		return err
	}
	rep := trainReport{Device: be.Name(), DType: dt.String(), Epochs: *epochs, Batch: B, Optimizer: *optName, LR: *lr,
		TrainRows: train.Rows, TestRows: test.Rows, Features: train.N, Classes: T,
		TrainLoss: trainLoss, TestLoss: testLoss, TestAccuracy: testAcc, Seconds: secs,
		ExamplesPerSecond: float64(*epochs*train.Rows) / secs, Model: *out}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "test accuracy %.4f (test loss %.4f) after %d epochs on %s in %.1f s (%.0f examples/s); model saved to %s\n",
		testAcc, testLoss, *epochs, be.Name(), secs, rep.ExamplesPerSecond, *out)
	return nil
}

// loadModel reads a model and the test data it is evaluated on, scaled.
func loadModel(path string, df *dataFlags) (*model.Model, *data.Set, error) {
	if path == "" {
		return nil, nil, usageErr("--model FILE is required")
	}
	m, err := model.Load(path)
	if err != nil {
		return nil, nil, err
	}
	_, test, err := df.load(false)
	if err != nil {
		return nil, nil, err
	}
	if err := m.CheckInput(test.N); err != nil {
		return nil, nil, fmt.Errorf("%s on %s: %w", filepath.Base(path), test.Source, err)
	}
	if test.Classes > m.T {
		return nil, nil, fmt.Errorf("%s has %d classes but %s has labels up to %d", path, m.T, test.Source, test.Classes-1)
	}
	test.Classes = m.T
	m.ScaleInputs(test.X, test.Rows)
	return m, test, nil
}

// openModel opens a forward-only layer holding the model's parameters.
func openModel(be backend.Backend, m *model.Model, rows int) (backend.Layer, error) {
	l, err := be.Open(backend.Config{Spec: graph.Spec{B: min(rows, 4096), N: m.N, T: m.T, DType: tensor.Float32}})
	if err != nil {
		return nil, err
	}
	if err := l.SetParams(fromF32(m.W, tensor.Float32, m.N, m.T), fromF32(m.B, tensor.Float32, m.T)); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// modelRun is what eval and predict share: their flags, the device, the
// model, the scaled test data and one pass of the model over it.
type modelRun struct {
	be        backend.Backend
	m         *model.Model
	test      *data.Set
	path      string
	loss, acc float64
	pred      []int32
	asJSON    bool
}

func runModel(name, summary, jsonHelp string, args []string, stdout, stderr io.Writer) (*modelRun, error) {
	fs := newFlags(name, summary, stdout)
	var df dataFlags
	df.register(fs, false)
	path := fs.String("model", "", "model file (safetensors) written by dsx train")
	device := fs.String("device", "", "auto, cpu or cuda")
	asJSON := fs.Bool("json", false, jsonHelp)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	be, err := chooseDevice(*device, stderr)
	if err != nil {
		return nil, err
	}
	m, test, err := loadModel(*path, &df)
	if err != nil {
		return nil, err
	}
	l, err := openModel(be, m, test.Rows)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	r := &modelRun{be: be, m: m, test: test, path: *path, asJSON: *asJSON}
	if r.loss, r.acc, r.pred, err = evaluate(l, test); err != nil {
		return nil, err
	}
	return r, nil
}

func cmdEval(args []string, stdout, stderr io.Writer) error {
	r, err := runModel("eval", "Evaluate a saved model on a test set: mean cross-entropy and accuracy.", "print one JSON object", args, stdout, stderr)
	if err != nil {
		return err
	}
	if r.asJSON {
		return writeJSON(stdout, map[string]any{"device": r.be.Name(), "model": r.path, "rows": r.test.Rows, "test_loss": r.loss, "test_accuracy": r.acc})
	}
	fmt.Fprintf(stdout, "test accuracy %.4f, test loss %.4f on %d rows of %s\n", r.acc, r.loss, r.test.Rows, r.test.Source)
	return nil
}

func cmdPredict(args []string, stdout, stderr io.Writer) error {
	r, err := runModel("predict", "Print one line per test row: row,predicted,label (CSV), with class names when the model has them.", "print a JSON array", args, stdout, stderr)
	if err != nil {
		return err
	}
	m, test, pred := r.m, r.test, r.pred
	name := func(c int32) string {
		if int(c) < len(m.Classes) {
			return m.Classes[c]
		}
		return strconv.Itoa(int(c))
	}
	if r.asJSON {
		type row struct {
			Row       int    `json:"row"`
			Predicted int32  `json:"predicted"`
			Class     string `json:"class"`
			Label     int32  `json:"label"`
		}
		rows := make([]row, len(pred))
		for i, p := range pred {
			rows[i] = row{i, p, name(p), test.Y[i]}
		}
		return writeJSON(stdout, rows)
	}
	fmt.Fprintln(stdout, "row,predicted,class,label")
	for i, p := range pred {
		fmt.Fprintf(stdout, "%d,%d,%q,%d\n", i, p, name(p), test.Y[i])
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return errors.New("writing JSON: " + err.Error())
	}
	return nil
}
