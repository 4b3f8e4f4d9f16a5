package train

import (
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"

	"dsx/backend"
	"dsx/backend/kit"
	"dsx/graph"
	"dsx/internal/checkpoint"
	"dsx/internal/dense"
	"dsx/internal/safetensors"
	"dsx/model"
)

// State is a run's checkpoint: W and b in the run's dtype, the
// optimizer's state (backend.OptimizerState), the position (epoch, batch,
// step, the epoch's running loss), the shuffling RNG's state at the start
// of the epoch under way, the per-epoch history, the feature scaling, the
// class names and the model's metadata, and Settings, the fingerprint of
// the data and of every setting that changes the result. SaveState writes
// it as a model file with all that besides (dsx eval and predict read it
// as a model); LoadState reads it back and refuses a damaged file.
type State = checkpoint.Checkpoint

// SaveState writes s to path atomically, with checksums: on an error, or
// a kill while it writes, a file already at path is left as it was.
func SaveState(path string, s *State) error { return checkpoint.Save(path, s) }

// LoadState reads a checkpoint written by SaveState; a truncated or
// corrupted file, or a model (which holds no run to continue), is an
// error naming the file and the problem.
func LoadState(path string) (*State, error) { return checkpoint.Load(path) }

// History names in State.History, one value per finished epoch.
const (
	histTrainLoss = "train_loss"
	histTestLoss  = "test_loss"
	histTestAcc   = "test_accuracy"
	histSeconds   = "seconds"
)

// State returns the run's state after the last step: what Restore needs
// for the rest of the run to be the uninterrupted run's, bit for bit, on
// the same device and number of ranks. The tensors are copies.
func (t *Trainer) State() (*State, error) {
	W, b, err := t.layer.Params()
	if err != nil {
		return nil, err
	}
	os, err := t.layer.OptimizerState()
	if err != nil {
		return nil, err
	}
	// Mid-epoch the RNG's state is the one its permutation was drawn
	// from; between epochs, the state the next one draws from.
	rng := t.epochStart
	if t.perm == nil {
		if rng, err = t.src.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	s := &State{W: W, B: b, Mean: t.scaler.Mean, Std: t.scaler.Std, Classes: t.cfg.ClassNames, Meta: t.meta(),
		Optimizer: os, RNG: slices.Clone(rng), Settings: t.Settings(),
		Position: checkpoint.Position{Epoch: t.pos.Epoch, Batch: t.pos.Batch, Step: t.pos.Step,
			LossSum: t.sum, LossRows: t.rows, DivergenceLimit: t.guard.limit},
		History: map[string][]float64{},
	}
	for _, e := range t.history {
		s.History[histTrainLoss] = append(s.History[histTrainLoss], e.TrainLoss)
		s.History[histSeconds] = append(s.History[histSeconds], e.Seconds)
		if t.test != nil {
			s.History[histTestLoss] = append(s.History[histTestLoss], e.TestLoss)
			s.History[histTestAcc] = append(s.History[histTestAcc], e.TestAccuracy)
		}
	}
	return s, nil
}

// SettingsError is Restore's refusal of a checkpoint of another run: the
// data or a setting that changes the result differ.
type SettingsError struct {
	Diffs []string // "NAME: VALUE in the checkpoint, now VALUE", sorted by name
}

func (e *SettingsError) Error() string {
	return "the checkpoint is of another run (" + strings.Join(e.Diffs, "; ") + ")"
}

// Restore sets the trainer to a state State returned (or LoadState read),
// so that Run goes on from there. It refuses, changing nothing, a state
// whose Settings differ from the trainer's (a *SettingsError naming each
// difference), whose feature scaling is not the trainer's (give New
// Config.Scaler = the state's), or which lies beyond Config.Epochs;
// Config.Epochs may be larger than the run's that saved it (to train
// longer), and the number of ranks may differ (the result then differs by
// the order of summation). Call it before Run.
func (t *Trainer) Restore(s *State) error {
	if d := checkpoint.Diff(s.Settings, t.Settings()); len(d) > 0 {
		return &SettingsError{Diffs: d}
	}
	if !sameFloats(s.Mean, t.scaler.Mean) || !sameFloats(s.Std, t.scaler.Std) {
		return fmt.Errorf("train: the checkpoint's feature scaling is not the trainer's: open the trainer with Config.Scaler = the checkpoint's")
	}
	p := s.Position
	if p.Epoch > t.cfg.Epochs || p.Epoch == t.cfg.Epochs && p.Batch > 0 {
		return fmt.Errorf("the checkpoint is at epoch %d, batch %d: beyond the %d epochs asked for", p.Epoch, p.Batch, t.cfg.Epochs)
	}
	if p.Batch >= t.Batches() {
		return fmt.Errorf("the checkpoint is at batch %d of an epoch of %d", p.Batch, t.Batches())
	}
	for _, name := range []string{histTrainLoss, histSeconds} {
		if n := len(s.History[name]); n != p.Epoch {
			return fmt.Errorf("the checkpoint's history has %d epochs of %s, its position %d", n, name, p.Epoch)
		}
	}
	if err := kit.CheckOptimizerState(t.layer.Config(), s.Optimizer); err != nil {
		return err
	}
	if err := kit.CheckParams(t.layer.Config(), s.W, s.B); err != nil {
		return err
	}
	var src = *t.src
	if err := src.UnmarshalBinary(s.RNG); err != nil {
		return fmt.Errorf("the checkpoint's RNG state: %w", err)
	}
	// Nothing can be refused from here on but by the device.
	if err := t.layer.SetParams(s.W, s.B); err != nil {
		return err
	}
	if err := t.layer.SetOptimizerState(s.Optimizer); err != nil {
		return err
	}
	*t.src = src
	t.perm, t.epochStart = nil, nil
	if p.Batch > 0 { // mid-epoch: its permutation again, from its state
		t.epochStart = slices.Clone(s.RNG)
		t.perm = t.train.Shuffle(t.rng)
	}
	t.pos = Position{Epoch: p.Epoch, Batch: p.Batch, Step: p.Step}
	t.sum, t.rows, t.guard.limit = p.LossSum, p.LossRows, p.DivergenceLimit
	t.history = t.history[:0]
	for i := range p.Epoch {
		e := EpochStats{Epoch: i + 1, TrainLoss: s.History[histTrainLoss][i], Seconds: s.History[histSeconds][i]}
		if tl, ta := s.History[histTestLoss], s.History[histTestAcc]; t.test != nil && len(tl) > i && len(ta) > i {
			e.TestLoss, e.TestAccuracy = tl[i], ta[i]
		}
		t.history = append(t.history, e)
	}
	return nil
}

// Init starts the run from m's W and b (fine-tuning, or more epochs of a
// finished run) with a fresh optimizer. m's feature scaling must be the
// trainer's (open it with Config.Scaler = m's), since W was trained on
// features scaled that way. Call it before Run.
func (t *Trainer) Init(m *model.Model) error {
	if t.pos.Step > 0 {
		return fmt.Errorf("train: Init after %d steps", t.pos.Step)
	}
	if m.N != t.train.N || m.T != t.T {
		return fmt.Errorf("the model has %d features and %d classes, the run %d and %d", m.N, m.T, t.train.N, t.T)
	}
	if !sameFloats(m.Mean, t.scaler.Mean) || !sameFloats(m.Std, t.scaler.Std) {
		return fmt.Errorf("train: the model's feature scaling is not the trainer's: open the trainer with Config.Scaler = the model's")
	}
	dt := t.cfg.DType
	return t.layer.SetParams(dense.New(dt, m.W, m.N, m.T), dense.New(dt, m.B, m.T))
}

// Rank is this process's rank in the run (0 alone): rank 0 writes
// checkpoints.
func (t *Trainer) Rank() int { return t.comm.Rank() }

// Settings is the run's fingerprint: the data's (data.Set.Fingerprint)
// and every setting that changes the result, by name (the names of dsx
// train's flags where it has them). Not in it: the epochs (a run may be
// continued for more), the number of ranks and the device (they change
// the result only by the order of summation), the class names and what
// Options hold.
func (t *Trainer) Settings() map[string]string {
	c := t.cfg
	lc := t.layer.Config()
	o := lc.Optimizer // with Adam's defaults filled in
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	s := map[string]string{
		"train data": t.trainFP, "test data": t.testFP,
		"dtype": c.DType.String(), "batch": strconv.Itoa(t.B), "seed": strconv.FormatUint(c.Seed, 10), "classes": strconv.Itoa(t.T),
		"optimizer": o.Kind.String(), "lr": g(o.LR), "weight-decay": g(o.WeightDecay),
		"reduction": reductionName(c.Loss.Reduction), "label-smoothing": g(c.Loss.LabelSmoothing), "softcap": g(c.Loss.Softcap),
		"z-loss": g(c.Loss.ZLoss), "soft-targets": strconv.FormatBool(c.Loss.SoftTargets),
		"ignore-index": "none", "class-weights": "none",
		"matmul": lc.MatMode.String(), "xent": lc.Xent.String(), "storage": lc.Storage.String(),
		"chunk-rows": strconv.Itoa(lc.ChunkRows), "memory-budget": strconv.FormatInt(lc.MemoryBudget, 10), "vocab-tile": strconv.Itoa(lc.VocabTile),
	}
	switch o.Kind {
	case backend.SGD:
		s["momentum"] = g(o.Momentum)
	case backend.Adam:
		s["beta1"], s["beta2"], s["eps"], s["adamw"] = g(o.Beta1), g(o.Beta2), g(o.Eps), strconv.FormatBool(o.Decoupled)
	}
	if c.Loss.UseIgnoreIndex {
		s["ignore-index"] = strconv.Itoa(c.Loss.IgnoreIndex)
	}
	if w := c.Loss.ClassWeights; w != nil {
		if len(w) <= 8 {
			v := make([]string, len(w))
			for i, x := range w {
				v[i] = g(x)
			}
			s["class-weights"] = strings.Join(v, ",")
		} else {
			s["class-weights"] = fmt.Sprintf("%d weights, crc32c %08x", len(w), crc32.Checksum(safetensors.LE(w), crc32.MakeTable(crc32.Castagnoli)))
		}
	}
	return s
}

func reductionName(r graph.Reduction) string {
	switch r {
	case graph.Mean:
		return "mean"
	case graph.Sum:
		return "sum"
	case graph.None:
		return "none"
	}
	return strconv.Itoa(int(r))
}

// sameFloats reports whether a and b hold the same bits (nil equals
// empty: no scaling).
func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
