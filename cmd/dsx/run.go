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
	"dsx/internal/dense"
	"dsx/model"
	"dsx/train"

	"gorgonia.org/tensor"
)

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

// modelRun is a loaded model, its device and its input data (raw: forward
// passes scale their batches with m.ScaleInputs).
type modelRun struct {
	be   backend.Backend
	m    *model.Model
	test *data.Set
	path string
	l    backend.Layer
}

// close releases the layer and the data.
func (r *modelRun) close() {
	r.l.Close()
	r.test.Close()
}

// open reads the model, passes it to checkModel (when not nil: checks of
// the command line against the model, such as predict's --top K ≤ T, whose
// usage errors come before any device is chosen or line printed), chooses
// the device, says which model runs (its shape, format and the dsx that
// saved it), and then reads the data, checked against the model's
// features from the data's header before its body is read.
func (mf *modelFlags) open(unlabelled bool, checkModel func(*model.Model) error, stderr io.Writer) (*modelRun, error) {
	path := *mf.model
	m, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	if checkModel != nil {
		if err := checkModel(m); err != nil {
			return nil, err
		}
	}
	be, err := chooseDevice(*mf.device, stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "dsx: model %s: %d features, %d classes, %s\n", path, m.N, m.T, m.Origin())
	_, test, err := mf.df.load(loadOpts{classes: m.T, features: m.N, unlabelled: unlabelled}, stderr)
	if errors.Is(err, data.ErrFeatureCount) {
		return nil, fmt.Errorf("model %s expects %d features: %w", path, m.N, err)
	}
	if err != nil {
		return nil, err
	}
	if err := m.CheckInput(test.N); err != nil {
		test.Close()
		return nil, fmt.Errorf("%s on %s: %w", filepath.Base(path), test.Source, err)
	}
	l, err := openModel(be, m, test.Rows)
	if err != nil {
		test.Close()
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
	if err := l.SetParams(dense.New(tensor.Float32, m.W, m.N, m.T), dense.New(tensor.Float32, m.B, m.T)); err != nil {
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
	r, err := mf.open(false, nil, stderr)
	if err != nil {
		return err
	}
	defer r.close()
	loss, acc, err := train.Evaluate(r.l, r.test, r.m.ScaleInputs)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, map[string]any{"device": r.be.Name(), "model": r.path, "model_info": infoOf(r.m), "rows": r.test.Rows,
			"test_loss": loss, "test_accuracy": acc, "load_seconds": r.test.Stats.LoadSeconds, "test_data": reportOf(r.test)})
	}
	fmt.Fprintf(stdout, "test accuracy %.4f, test loss %.4f on %d rows of %s\n", acc, loss, r.test.Rows, r.test.Source)
	return nil
}

// modelInfo is a loaded model in eval's JSON: its shape, its file's format
// ("dsx-softmax-v1"; "" without a format key) and the dsx that saved it
// (null: a file from before dsx recorded it).
type modelInfo struct {
	Features   int     `json:"features"`
	Classes    int     `json:"classes"`
	Format     string  `json:"format"`
	DsxVersion *string `json:"dsx_version"`
}

func infoOf(m *model.Model) modelInfo {
	in := modelInfo{Features: m.N, Classes: m.T, Format: m.FileFormat}
	if m.DsxVersion != "" {
		in.DsxVersion = &m.DsxVersion
	}
	return in
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return errors.New("writing JSON: " + err.Error())
	}
	return nil
}
