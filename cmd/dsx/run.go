package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"dsx/backend"
	"dsx/data"
	"dsx/graph"
	"dsx/model"

	"gorgonia.org/tensor"
)

// forBatches runs the layer forward over every row of s, in batches of the
// layer's B, and hands fn each batch's logits (n×T, float64) and labels
// (nil without labels).
func forBatches(l backend.Layer, s *data.Set, fn func(start, n int, z []float64, labels []int32) error) error {
	B := l.Config().B
	bt := newBatcher(s, B, l.Config().DType)
	idx := make([]int, B)
	var z []float64
	for start := 0; start < s.Rows; start += B {
		n := min(B, s.Rows-start)
		for i := range idx[:n] {
			idx[i] = start + i
		}
		x, _, labels := bt.batch(idx[:n])
		logits, err := l.Logits(x)
		if err != nil {
			return err
		}
		z = toF64(z, logits)
		if i := firstNonFinite(z); i >= 0 {
			T := len(z) / n
			return fmt.Errorf("%s: row %d: logit of class %d is %v although the row's scaled features are finite: x·W + b overflows %v (a feature far outside the training data?)",
				s.Source, start+i/T, i%T, z[i], l.Config().DType)
		}
		if !s.Labelled() {
			labels = nil
		}
		if err := fn(start, n, z, labels); err != nil {
			return err
		}
	}
	return nil
}

// evaluate returns the mean plain cross-entropy and the accuracy of the
// layer on a labelled set.
func evaluate(l backend.Layer, s *data.Set) (loss, acc float64, err error) {
	plain := graph.LossOptions{}
	correct, sum := 0, 0.0
	err = forBatches(l, s, func(_, n int, z []float64, labels []int32) error {
		T := len(z) / n
		for i := 0; i < n; i++ {
			row := z[i*T : (i+1)*T]
			if int32(argmax(row)) == labels[i] {
				correct++
			}
			if int(labels[i]) < T {
				rl, _ := graph.RowLoss(row, int(labels[i]), nil, &plain)
				sum += rl
			}
		}
		return nil
	})
	return sum / float64(s.Rows), float64(correct) / float64(s.Rows), err
}

// firstNonFinite is the index of v's first NaN or ±Inf, or -1.
func firstNonFinite(v []float64) int {
	for i, x := range v {
		if x-x != 0 {
			return i
		}
	}
	return -1
}

// argmax is the first index of the largest value, as numpy's argmax.
func argmax(v []float64) int {
	best := 0
	for c, x := range v {
		if x > v[best] {
			best = c
		}
	}
	return best
}

// toF64 converts a float tensor's data into buf (grown as needed).
func toF64(buf []float64, t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float64:
		return d
	case []float32:
		if cap(buf) < len(d) {
			buf = make([]float64, len(d))
		}
		buf = buf[:len(d)]
		for i, v := range d {
			buf[i] = float64(v)
		}
		return buf
	}
	return nil
}

// modelFlags are what eval and predict share: the data, the model and the
// device.
type modelFlags struct {
	df     dataFlags
	model  *string
	device *string
}

func (mf *modelFlags) register(fs *flag.FlagSet) {
	mf.df.register(fs, false)
	mf.model = fs.String("model", "", "model `file` (safetensors) written by dsx train")
	mf.device = fs.String("device", "", "auto, cpu or cuda (default $DSX_DEVICE or auto)")
}

// check is the command-line checks, before the device is chosen.
func (mf *modelFlags) check() error {
	if *mf.model == "" {
		return usageErr("--model FILE is required")
	}
	return mf.df.check()
}

// modelRun is a loaded model, its device and its scaled input data.
type modelRun struct {
	be   backend.Backend
	m    *model.Model
	test *data.Set
	path string
	l    backend.Layer
}

// open chooses the device, reads the model and then the data, checked
// against the model's features from the data's header before its body is
// read, and scales the data.
func (mf *modelFlags) open(unlabelled bool, stderr io.Writer) (*modelRun, error) {
	be, err := chooseDevice(*mf.device, stderr)
	if err != nil {
		return nil, err
	}
	path := *mf.model
	m, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	_, test, err := mf.df.load(loadOpts{classes: m.T, features: m.N, unlabelled: unlabelled}, stderr)
	if errors.Is(err, data.ErrFeatureCount) {
		return nil, fmt.Errorf("model %s expects %d features: %w", path, m.N, err)
	}
	if err != nil {
		return nil, err
	}
	if err := m.CheckInput(test.N); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", filepath.Base(path), test.Source, err)
	}
	if err := m.ScaleInputs(test.X, test.Rows); err != nil {
		return nil, fmt.Errorf("%s: %w", test.Source, err)
	}
	l, err := openModel(be, m, test.Rows)
	if err != nil {
		return nil, err
	}
	return &modelRun{be: be, m: m, test: test, path: path, l: l}, nil
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

func cmdEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "Evaluate a saved model on a labelled test set: mean cross-entropy and accuracy.", stdout)
	var mf modelFlags
	mf.register(fs.FlagSet)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := mf.check(); err != nil {
		return err
	}
	r, err := mf.open(false, stderr)
	if err != nil {
		return err
	}
	defer r.l.Close()
	loss, acc, err := evaluate(r.l, r.test)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, map[string]any{"device": r.be.Name(), "model": r.path, "rows": r.test.Rows,
			"test_loss": loss, "test_accuracy": acc, "load_seconds": r.test.Stats.LoadSeconds, "test_data": reportOf(r.test)})
	}
	fmt.Fprintf(stdout, "test accuracy %.4f, test loss %.4f on %d rows of %s\n", acc, loss, r.test.Rows, r.test.Source)
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
