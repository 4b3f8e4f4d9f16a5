// Package checkpoint is the file a training run saves to continue from:
// a model file (package model: it serves as one for dsx eval and predict)
// whose W and b are in the dtype the run trains in, with the optimizer's
// state, the run's position, the shuffling RNG's state, the loss history
// and a fingerprint of the data and of every setting that changes the
// result.
//
// # File layout
//
// A safetensors file (model.CheckpointFormat in "format"). Tensors:
//
//	"W"                  F32 or F64 [N, T]  the layer's parameters, exact
//	"b"                  F32 or F64 [T]
//	"scaler.mean"        F32 [N]            (absent without scaling)
//	"scaler.std"         F32 [N]
//	"optim.W.exp_avg"    F32 or F64         the optimizer's buffers under
//	...                                     backend.OptimizerState's names
//	"history.NAME"       F64 [epochs]       per-epoch series (train_loss, ...)
//
// "__metadata__" holds what a model file holds ("classes" and the model's
// metadata), and "checkpoint.position" (JSON: epoch, batch, step, the
// epoch's running loss sum and rows, the divergence limit), "checkpoint.optimizer" (JSON: kind,
// step), "checkpoint.rng" (the RNG's MarshalBinary, base64),
// "checkpoint.settings" (JSON object: the fingerprint) and "checksums"
// (the CRC-32C of every tensor and of the metadata:
// safetensors.ChecksumsKey).
//
// Save writes atomically (internal/atomicfile): a kill or an error leaves
// the previous checkpoint as it was. Load refuses a truncated file or one
// whose bytes do not match their checksums, naming what is wrong.
package checkpoint

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"dsx/backend"
	"dsx/internal/atomicfile"
	"dsx/internal/dense"
	"dsx/internal/quote"
	"dsx/internal/safetensors"
	"dsx/model"

	"gorgonia.org/tensor"
)

// Position is where a run stands, and the running values that go on from
// there.
type Position struct {
	Epoch int `json:"epoch"` // epochs finished (the one under way, from 0)
	Batch int `json:"batch"` // batches of the epoch under way done
	Step  int `json:"step"`  // optimizer steps taken in all
	// The running sum of the epoch's batch losses (each times its rows)
	// and the rows summed: the epoch's mean loss goes on from them.
	LossSum  float64 `json:"loss_sum"`
	LossRows int     `json:"loss_rows"`
	// DivergenceLimit is the batch loss above which the run is called
	// diverged, set from its first batch (0 before).
	DivergenceLimit float64 `json:"divergence_limit"`
}

// Checkpoint is everything a run needs to continue where it stopped.
type Checkpoint struct {
	// W (N×T) and b (T) in the run's dtype, bit for bit.
	W, B *tensor.Dense
	// The model's scaler (nil: none), class names (nil: unknown) and
	// metadata, as model.Model holds them.
	Mean, Std []float32
	Classes   []string
	Meta      map[string]string

	Optimizer backend.OptimizerState
	Position  Position
	RNG       []byte               // the shuffling RNG's state (MarshalBinary)
	History   map[string][]float64 // per-epoch series by name
	// Settings is the fingerprint: every setting that changes the result,
	// and the data's, by name (Diff compares two).
	Settings map[string]string
}

// meta keys.
const (
	keyPosition  = "checkpoint.position"
	keyOptimizer = "checkpoint.optimizer"
	keyRNG       = "checkpoint.rng"
	keySettings  = "checkpoint.settings"
)

type optimMeta struct {
	Kind string `json:"kind"`
	Step int    `json:"step"`
}

// Model is the model the checkpoint holds: W and b in float32 (a float64
// run's rounded, as dsx train saves its model), the scaler, class names and
// metadata.
func (c *Checkpoint) Model() *model.Model { return c.model(false) }

// model is Model; with share, a float32 run's W and b are views of c's
// (Save validates them without a copy).
func (c *Checkpoint) model(share bool) *model.Model {
	s := c.W.Shape()
	w, b := dense.F32(c.W), dense.F32(c.B)
	if share && c.W.Dtype() == tensor.Float32 && !c.W.RequiresIterator() && !c.B.RequiresIterator() {
		w, b = dense.View[float32](c.W), dense.View[float32](c.B)
	}
	return &model.Model{W: w, B: b, N: s[0], T: s[1], Mean: c.Mean, Std: c.Std, Classes: c.Classes, Meta: c.Meta}
}

// dtypeName is a layer dtype's safetensors name.
func dtypeName(dt tensor.Dtype) (string, error) {
	switch dt {
	case tensor.Float32:
		return "F32", nil
	case tensor.Float64:
		return "F64", nil
	}
	return "", fmt.Errorf("dtype %v: want float32 or float64", dt)
}

// bytesOf is a float tensor's little-endian bytes (a view where the
// machine is little-endian), in the order of its elements.
func bytesOf(t *tensor.Dense) []byte {
	if t.RequiresIterator() {
		t = t.Materialize().(*tensor.Dense)
	}
	if t.Dtype() == tensor.Float64 {
		return safetensors.LE(dense.View[float64](t))
	}
	return safetensors.LE(dense.View[float32](t))
}

// entries and metadata of c's file; the checks of the model's part are
// model.Model.Validate's.
func (c *Checkpoint) encode() ([]safetensors.Entry, map[string]string, error) {
	if c.W == nil || c.B == nil {
		return nil, nil, errors.New("no W or b")
	}
	ws := c.W.Shape()
	if ws.Dims() != 2 || c.B.Shape().Dims() != 1 || c.B.Shape()[0] != ws[1] {
		return nil, nil, fmt.Errorf("W has shape %v and b %v: want N×T and T", ws, c.B.Shape())
	}
	if c.B.Dtype() != c.W.Dtype() {
		return nil, nil, fmt.Errorf("W is %v but b %v", c.W.Dtype(), c.B.Dtype())
	}
	dt, err := dtypeName(c.W.Dtype())
	if err != nil {
		return nil, nil, err
	}
	m := c.model(true)
	if err := m.Validate(); err != nil {
		return nil, nil, err
	}
	meta, err := m.Metadata(model.CheckpointFormat)
	if err != nil {
		return nil, nil, err
	}
	for k := range meta {
		if strings.HasPrefix(k, "checkpoint.") {
			return nil, nil, fmt.Errorf("model metadata key %s is the checkpoint's", quote.Value(k))
		}
	}
	es := []safetensors.Entry{
		{Name: "W", Dtype: dt, Shape: []int{ws[0], ws[1]}, Data: bytesOf(c.W)},
		{Name: "b", Dtype: dt, Shape: []int{ws[1]}, Data: bytesOf(c.B)},
	}
	if c.Mean != nil {
		es = append(es, safetensors.Entry{Name: "scaler.mean", Dtype: "F32", Shape: []int{ws[0]}, Data: safetensors.LE(c.Mean)},
			safetensors.Entry{Name: "scaler.std", Dtype: "F32", Shape: []int{ws[0]}, Data: safetensors.LE(c.Std)})
	}
	o := c.Optimizer
	for _, name := range slices.Sorted(maps.Keys(o.Tensors)) {
		t := o.Tensors[name]
		if t == nil || t.Dtype() != c.W.Dtype() {
			return nil, nil, fmt.Errorf("optimizer state %s is not %v as W is", quote.Value(name), c.W.Dtype())
		}
		es = append(es, safetensors.Entry{Name: "optim." + name, Dtype: dt, Shape: t.Shape().Clone(), Data: bytesOf(t)})
	}
	for _, name := range slices.Sorted(maps.Keys(c.History)) {
		h := c.History[name]
		es = append(es, safetensors.Entry{Name: "history." + name, Dtype: "F64", Shape: []int{len(h)}, Data: safetensors.LE(h)})
	}
	for key, v := range map[string]any{
		keyPosition:  c.Position,
		keyOptimizer: optimMeta{Kind: o.Kind.String(), Step: o.Step},
		keySettings:  c.Settings,
	} {
		j, err := json.Marshal(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", key, err)
		}
		meta[key] = string(j)
	}
	meta[keyRNG] = base64.StdEncoding.EncodeToString(c.RNG)
	return es, meta, nil
}

// MidWrite, when not nil, is called by Save in the middle of writing (the
// header written, the tensors not): tests stop or kill a writer there to
// check that the previous checkpoint survives.
var MidWrite func()

// Save writes c to path atomically, with checksums: on any error, or a
// kill while it writes, a file already at path is left as it was.
func Save(path string, c *Checkpoint) error {
	es, meta, err := c.encode()
	if err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		if MidWrite != nil {
			w = &midWriter{w: w}
		}
		return safetensors.Write(w, meta, es, true)
	})
}

// midWriter calls MidWrite after the second Write (the header's length,
// then the header).
type midWriter struct {
	w     io.Writer
	calls int
}

func (m *midWriter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if m.calls++; m.calls == 2 {
		MidWrite()
	}
	return n, err
}

// Load reads and checks a checkpoint written by Save: a file cut short, a
// byte that does not match its checksum, a model file (which holds no run
// to continue) or anything missing is an error naming path and the
// problem.
func Load(path string) (*Checkpoint, error) {
	h, data, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := decode(h, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func decode(h *safetensors.Header, data []byte) (*Checkpoint, error) {
	switch f := h.Meta["format"]; f {
	case model.CheckpointFormat:
	case model.Format, "":
		return nil, errors.New("a model, not a checkpoint: it holds W and b but no optimizer state or position to resume from (dsx train --init MODEL starts from its W and b)")
	default:
		return nil, fmt.Errorf("metadata format %s, want %q", quote.Value(f), model.CheckpointFormat)
	}
	if _, ok := h.Meta[safetensors.ChecksumsKey]; !ok {
		return nil, fmt.Errorf("no %s in the metadata: the header is damaged", safetensors.ChecksumsKey)
	}
	// Decode verifies the checksums and checks the model's part.
	m, err := model.Decode(h, data)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Mean: m.Mean, Std: m.Std, Classes: m.Classes, Meta: m.Meta, History: map[string][]float64{}}
	wt, _ := h.Get("W")
	dt := tensor.Float32
	if wt.Dtype == "F64" {
		dt = tensor.Float64
	}
	tensorOf := func(t safetensors.Tensor) (*tensor.Dense, error) {
		if t.Dtype != wt.Dtype {
			return nil, fmt.Errorf("tensor %s is %s but W is %s", quote.Value(t.Name), t.Dtype, wt.Dtype)
		}
		shape := make([]int, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = int(d)
		}
		// The values first: a tensor made with a shape and no backing
		// would allocate what the header claims.
		var v any
		var err error
		if dt == tensor.Float64 {
			v, err = safetensors.Floats[float64](t, data)
		} else {
			v, err = safetensors.Floats[float32](t, data)
		}
		if err != nil {
			return nil, err
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v)), nil
	}
	if c.W, err = tensorOf(wt); err != nil {
		return nil, err
	}
	bt, _ := h.Get("b")
	if c.B, err = tensorOf(bt); err != nil {
		return nil, err
	}
	var om optimMeta
	if err := unmarshal(h.Meta, keyOptimizer, &om); err != nil {
		return nil, err
	}
	kind, err := backend.ParseOptimizerKind(om.Kind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyOptimizer, err)
	}
	c.Optimizer = backend.OptimizerState{Kind: kind, Step: om.Step}
	for _, t := range h.Tensors {
		switch {
		case strings.HasPrefix(t.Name, "optim."):
			v, err := tensorOf(t)
			if err != nil {
				return nil, err
			}
			if c.Optimizer.Tensors == nil {
				c.Optimizer.Tensors = map[string]*tensor.Dense{}
			}
			c.Optimizer.Tensors[strings.TrimPrefix(t.Name, "optim.")] = v
		case strings.HasPrefix(t.Name, "history."):
			if t.Dtype != "F64" || len(t.Shape) != 1 {
				return nil, fmt.Errorf("tensor %s: %s %v, want a F64 vector", quote.Value(t.Name), t.Dtype, t.Shape)
			}
			v, err := safetensors.Floats[float64](t, data)
			if err != nil {
				return nil, err
			}
			c.History[strings.TrimPrefix(t.Name, "history.")] = v
		}
	}
	if err := unmarshal(h.Meta, keyPosition, &c.Position); err != nil {
		return nil, err
	}
	if p := c.Position; p.Epoch < 0 || p.Batch < 0 || p.Step < 0 || p.LossRows < 0 {
		return nil, fmt.Errorf("%s: epoch %d, batch %d, step %d, rows %d: none may be negative", keyPosition, p.Epoch, p.Batch, p.Step, p.LossRows)
	}
	if err := unmarshal(h.Meta, keySettings, &c.Settings); err != nil {
		return nil, err
	}
	rng, ok := h.Meta[keyRNG]
	if !ok {
		return nil, fmt.Errorf("no %s in the metadata", keyRNG)
	}
	if c.RNG, err = base64.StdEncoding.DecodeString(rng); err != nil {
		return nil, fmt.Errorf("%s is not base64: %w", keyRNG, err)
	}
	return c, nil
}

// unmarshal decodes the JSON of metadata key into v; a missing key is an
// error.
func unmarshal(meta map[string]string, key string, v any) error {
	s, ok := meta[key]
	if !ok {
		return fmt.Errorf("no %s in the metadata", key)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// Diff lists the settings whose values differ between a checkpoint's
// (saved) and a run's (now), sorted by name, each as "NAME: VALUE in the
// checkpoint, now VALUE" (a setting one side lacks shows as "none"). A
// value longer than 100 bytes (only a damaged file holds one) is quoted
// short (internal/quote).
func Diff(saved, now map[string]string) []string {
	keys := map[string]bool{}
	for k := range saved {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		a, okA := saved[k]
		b, okB := now[k]
		if okA && okB && a == b {
			continue
		}
		show := func(v string, ok bool) string {
			switch {
			case !ok:
				return "none"
			case len(v) > 100:
				return quote.Value(v)
			}
			return v
		}
		out = append(out, fmt.Sprintf("%s: %s in the checkpoint, now %s", k, show(a, okA), show(b, okB)))
	}
	return out
}
