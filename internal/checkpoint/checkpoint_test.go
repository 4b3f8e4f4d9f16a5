package checkpoint

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/internal/dense"
	"dsx/model"

	"gorgonia.org/tensor"
)

// sample is a checkpoint of an N×T layer of dtype dt after some Adam steps.
func sample(t *testing.T, dt tensor.Dtype) *Checkpoint {
	t.Helper()
	const N, T = 3, 4
	r := rand.New(rand.NewPCG(7, 8))
	vals := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64() / 3 // not exact in float32: rounding would show
		}
		return v
	}
	sq := func(v []float64) []float64 {
		for i := range v {
			v[i] *= v[i]
		}
		return v
	}
	pcg := rand.NewPCG(1, 0xd5)
	for range 5 {
		pcg.Uint64()
	}
	state, err := pcg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &Checkpoint{
		W: dense.New(dt, vals(N*T), N, T), B: dense.New(dt, vals(T), T),
		Mean: []float32{0.5, 1, -2}, Std: []float32{1, 2, 0.25},
		Classes: []string{"cat", "dog", "émeu", "ant"},
		Meta:    map[string]string{"epochs": "6", "optimizer": "adam"},
		Optimizer: backend.OptimizerState{Kind: backend.Adam, Step: 17, Tensors: map[string]*tensor.Dense{
			"W.exp_avg": dense.New(dt, vals(N*T), N, T), "W.exp_avg_sq": dense.New(dt, sq(vals(N*T)), N, T),
			"b.exp_avg": dense.New(dt, vals(T), T), "b.exp_avg_sq": dense.New(dt, sq(vals(T)), T),
		}},
		Position: Position{Epoch: 3, Batch: 2, Step: 17, LossSum: 123.456789012345678, LossRows: 512, DivergenceLimit: 2302.585092994046},
		RNG:      state,
		History:  map[string][]float64{"train_loss": {2.3, 1.1}, "test_accuracy": {0.5, 0.75}, "empty": {}},
		Settings: map[string]string{"lr": "0.001", "train data": "60000 rows × 784 features, 10 classes, crc32c 01234567"},
	}
}

func sameBits(a, b *tensor.Dense) bool {
	if a == nil || b == nil || a.Dtype() != b.Dtype() || !a.Shape().Eq(b.Shape()) {
		return false
	}
	x, y := dense.F64(a), dense.F64(b)
	for i := range x {
		if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
			return false
		}
	}
	return true
}

func TestRoundTrip(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			c := sample(t, dt)
			path := filepath.Join(t.TempDir(), "run.ckpt")
			if err := Save(path, c); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if !sameBits(got.W, c.W) || !sameBits(got.B, c.B) {
				t.Errorf("W or b not bit for bit: %v %v", got.W, got.B)
			}
			if got.Optimizer.Kind != c.Optimizer.Kind || got.Optimizer.Step != c.Optimizer.Step || len(got.Optimizer.Tensors) != 4 {
				t.Errorf("optimizer %v step %d, %d tensors", got.Optimizer.Kind, got.Optimizer.Step, len(got.Optimizer.Tensors))
			}
			for n, v := range c.Optimizer.Tensors {
				if !sameBits(got.Optimizer.Tensors[n], v) {
					t.Errorf("optimizer tensor %s not bit for bit", n)
				}
			}
			if got.Position != c.Position {
				t.Errorf("position %+v, want %+v (the loss sum exactly)", got.Position, c.Position)
			}
			if !bytes.Equal(got.RNG, c.RNG) {
				t.Errorf("RNG state differs")
			}
			for _, f := range []struct {
				name      string
				got, want any
			}{{"history", got.History, c.History}, {"settings", got.Settings, c.Settings}, {"meta", got.Meta, c.Meta},
				{"classes", got.Classes, c.Classes}, {"mean", got.Mean, c.Mean}, {"std", got.Std, c.Std}} {
				if !reflect.DeepEqual(f.got, f.want) {
					t.Errorf("%s: %v, want %v", f.name, f.got, f.want)
				}
			}
			// The RNG goes on where it stood.
			var a, b rand.PCG
			if err := a.UnmarshalBinary(c.RNG); err != nil {
				t.Fatal(err)
			}
			if err := b.UnmarshalBinary(got.RNG); err != nil {
				t.Fatal(err)
			}
			if a.Uint64() != b.Uint64() {
				t.Errorf("the restored RNG draws another number")
			}

			// It serves as a model: W and b in float32, the scaler, the
			// classes and the model's metadata, none of the trainer's.
			m, err := model.Load(path)
			if err != nil {
				t.Fatalf("model.Load of a checkpoint: %v", err)
			}
			want := c.Model()
			if !reflect.DeepEqual(m.W, want.W) || !reflect.DeepEqual(m.B, want.B) || !reflect.DeepEqual(m.Std, c.Std) || !reflect.DeepEqual(m.Classes, c.Classes) {
				t.Errorf("model from the checkpoint: %+v, want %+v", m, want)
			}
			if !reflect.DeepEqual(m.Meta, c.Meta) {
				t.Errorf("model metadata %v, want %v (no checkpoint.* or checksums)", m.Meta, c.Meta)
			}
		})
	}
}

// TestDamaged: a checkpoint cut short anywhere, or with any byte changed,
// is refused with an error that says so, by Load and by model.Load.
func TestDamaged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.ckpt")
	if err := Save(path, sample(t, tensor.Float32)); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.LittleEndian.Uint64(good))
	bad := filepath.Join(dir, "bad.ckpt")
	try := func(what string, b []byte, want ...string) {
		t.Helper()
		if err := os.WriteFile(bad, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(bad)
		_, merr := model.Load(bad)
		for _, e := range []error{err, merr} {
			if e == nil {
				t.Errorf("%s: loaded", what)
				continue
			}
			ok := false
			for _, w := range want {
				ok = ok || strings.Contains(e.Error(), w)
			}
			if !ok || !strings.Contains(e.Error(), bad) {
				t.Errorf("%s: error %q names neither the file nor any of %q", what, e, want)
			}
		}
	}
	for _, n := range []int{0, 5, 8, 100, 8 + hlen, 8 + hlen + 10, len(good) - 1} {
		try("cut to "+strconv.Itoa(n)+" bytes", good[:n], "truncated", "tensors cover only", "needs at least 8")
	}
	// A flipped bit in every 7th byte of the data section, one at a time.
	for i := 8 + hlen; i < len(good); i += 7 {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		try("bit flipped at byte "+strconv.Itoa(i), b, "checksum", "is NaN", "is +Inf", "is -Inf", "want > 0")
	}
	// A digit of the metadata changed (the epoch 3 → 4): the header still
	// parses, the metadata's checksum does not match.
	i := bytes.Index(good, []byte(`\"epoch\":3`))
	if i < 0 {
		t.Fatalf("no epoch in the header: %s", good[8:8+hlen])
	}
	b := bytes.Clone(good)
	b[i+len(`\"epoch\":`)] = '4'
	try("epoch changed in the header", b, "metadata: checksum")
}

// TestSaveKeepsPrevious: a checkpoint that cannot be saved (a NaN weight)
// leaves the previous one as it was.
func TestSaveKeepsPrevious(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	c := sample(t, tensor.Float64)
	if err := Save(path, c); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	c.W.Data().([]float64)[5] = math.NaN()
	err := Save(path, c)
	if err == nil || !strings.Contains(err.Error(), "not saved") || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("saving a NaN weight: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("a failed save changed the previous checkpoint")
	}
	if _, err := Load(path); err != nil {
		t.Errorf("the previous checkpoint no longer loads: %v", err)
	}
}

// TestModelIsNoCheckpoint: a model file is refused as a checkpoint, with
// the way to start from it.
func TestModelIsNoCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := model.Save(path, sample(t, tensor.Float32).Model()); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "a model, not a checkpoint") || !strings.Contains(err.Error(), "--init") {
		t.Errorf("a model as a checkpoint: %v", err)
	}
}

func TestDiff(t *testing.T) {
	got := Diff(map[string]string{"lr": "0.001", "seed": "1", "dtype": "float32", "old": "x"},
		map[string]string{"lr": "0.01", "seed": "1", "dtype": "float32", "new": strings.Repeat("y", 200)})
	want := []string{
		`lr: 0.001 in the checkpoint, now 0.01`,
		`new: none in the checkpoint, now "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"… (200 bytes)`,
		`old: x in the checkpoint, now none`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := Diff(map[string]string{"a": "1"}, map[string]string{"a": "1"}); len(d) != 0 {
		t.Errorf("equal settings differ: %v", d)
	}
}
