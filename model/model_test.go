package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sample returns a valid model with N=3 features and T=2 classes.
func sample() *Model {
	return &Model{
		W:       []float32{0.5, -1, 2, 0.25, -3.5, 1e-30},
		B:       []float32{0.1, -0.2},
		N:       3,
		T:       2,
		Mean:    []float32{1, 2, 3},
		Std:     []float32{2, 1, 0.5},
		Classes: []string{"cat", "dog \"big\""},
		Meta:    map[string]string{"epochs": "5", "test_accuracy": "0.84"},
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestRoundTrip(t *testing.T) {
	noScaler := sample()
	noScaler.Mean, noScaler.Std, noScaler.Classes, noScaler.Meta = nil, nil, nil, nil
	for _, tc := range []struct {
		name string
		m    *Model
	}{{"full", sample()}, {"bare", noScaler}} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "model.safetensors")
			if err := Save(p, tc.m); err != nil {
				t.Fatal(err)
			}
			got, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			m := tc.m
			if got.N != m.N || got.T != m.T || !equal(got.W, m.W) || !equal(got.B, m.B) ||
				!equal(got.Mean, m.Mean) || !equal(got.Std, m.Std) {
				t.Errorf("got %+v\nwant %+v", got, m)
			}
			if strings.Join(got.Classes, "|") != strings.Join(m.Classes, "|") || len(got.Classes) != len(m.Classes) {
				t.Errorf("classes %q, want %q", got.Classes, m.Classes)
			}
			if len(got.Meta) != len(m.Meta) {
				t.Errorf("meta %v, want %v", got.Meta, m.Meta)
			}
			for k, v := range m.Meta {
				if got.Meta[k] != v {
					t.Errorf("meta %v, want %v", got.Meta, m.Meta)
				}
			}
			raw, _ := os.ReadFile(p)
			if hl := binary.LittleEndian.Uint64(raw); hl%8 != 0 {
				t.Errorf("header length %d not a multiple of 8", hl)
			}
		})
	}
}

func TestLoadF64(t *testing.T) {
	// A file written by other tools may hold float64 tensors.
	w := []float64{1, 2, 3, 4}
	b := []float64{-1, 0.5}
	p := writeRaw(t, map[string]any{
		"W": map[string]any{"dtype": "F64", "shape": []int{2, 2}, "data_offsets": []int{0, 32}},
		"b": map[string]any{"dtype": "F64", "shape": []int{2}, "data_offsets": []int{32, 48}},
	}, f64bytes(append(w, b...)))
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(m.W, []float32{1, 2, 3, 4}) || !equal(m.B, []float32{-1, 0.5}) || m.Mean != nil {
		t.Errorf("got %+v", m)
	}
}

// TestLoadLegacyScale reads a file written before scaler.std, whose
// "scaler.scale" holds 1/std and was multiplied in: the loaded model
// divides by std = 1/scale and so scales inputs as before.
func TestLoadLegacyScale(t *testing.T) {
	f32 := func(shape []int, b, e int) map[string]any {
		return map[string]any{"dtype": "F32", "shape": shape, "data_offsets": []int{b, e}}
	}
	w, b := []float32{1, 2, 3, 4}, []float32{0, 0}
	mean, scale := []float32{1, 10}, []float32{0.5, 0.25} // std 2 and 4: exact in float32
	p := writeRaw(t, map[string]any{
		"W": f32([]int{2, 2}, 0, 16), "b": f32([]int{2}, 16, 24),
		"scaler.mean": f32([]int{2}, 24, 32), "scaler.scale": f32([]int{2}, 32, 40),
	}, f32bytes(append(append(append(w, b...), mean...), scale...)))
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(m.Std, []float32{2, 4}) || !equal(m.Mean, mean) {
		t.Errorf("legacy scale %v read as std %v, want [2 4]", scale, m.Std)
	}
	x := []float32{5, 2}
	m.ScaleInputs(x, 1)
	if !equal(x, []float32{(5 - 1) * 0.5, (2 - 10) * 0.25}) {
		t.Errorf("scaled %v, want what the old multiply gave: [2 -2]", x)
	}
	// Saving it again writes the new name only.
	p2 := filepath.Join(t.TempDir(), "new.safetensors")
	if err := Save(p2, m); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p2)
	if !bytes.Contains(raw, []byte(`"scaler.std"`)) || bytes.Contains(raw, []byte(`"scaler.scale"`)) {
		t.Errorf("re-saved header: %s", raw[8:8+binary.LittleEndian.Uint64(raw)])
	}

	for _, tc := range []struct {
		name  string
		scale []float32
		extra bool
		want  string
	}{
		{"zero scale", []float32{0.5, 0}, false, "scaler.scale[1] is 0"},
		{"both names", []float32{0.5, 0.25}, true, "both scaler.std and the older scaler.scale"},
	} {
		h := map[string]any{
			"W": f32([]int{2, 2}, 0, 16), "b": f32([]int{2}, 16, 24),
			"scaler.mean": f32([]int{2}, 24, 32), "scaler.scale": f32([]int{2}, 32, 40),
		}
		d := append(append(append(append([]float32(nil), w...), b...), mean...), tc.scale...)
		if tc.extra {
			h["scaler.std"] = f32([]int{2}, 40, 48)
			d = append(d, 2, 4)
		}
		p := writeRaw(t, h, f32bytes(d))
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func f64bytes(v []float64) []byte {
	var out []byte
	for _, x := range v {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(x))
	}
	return out
}

func f32bytes(v []float32) []byte {
	var out []byte
	for _, x := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

// writeRaw writes a safetensors file with the given header and data.
func writeRaw(t *testing.T, header map[string]any, data []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	return writeBytes(t, append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...), data...))
}

func writeBytes(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	good, err := encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.LittleEndian.Uint64(good))
	// W is 3×2 F32 (24 bytes), b 2 (8), mean 3 (12), scale 3 (12): 56 bytes.
	tensor := func(dtype string, shape []int, b, e int) map[string]any {
		return map[string]any{"dtype": dtype, "shape": shape, "data_offsets": []int{b, e}}
	}
	data := f32bytes(make([]float32, 8))
	nanData := f32bytes([]float32{1, float32(math.NaN()), 3, 4, 5, 6, 7, 8})
	for _, tc := range []struct {
		name string
		file func(t *testing.T) string
		want string
	}{
		{"truncated data", func(t *testing.T) string { return writeBytes(t, good[:len(good)-10]) },
			`truncated: tensor "scaler.std" needs bytes 44..56 but data has 46`},
		{"truncated length", func(t *testing.T) string { return writeBytes(t, good[:5]) }, "truncated: 5 bytes"},
		{"empty", func(t *testing.T) string { return writeBytes(t, nil) }, "truncated: 0 bytes"},
		{"header beyond file", func(t *testing.T) string { return writeBytes(t, good[:8+hlen-1]) },
			"truncated: header length"},
		{"header over limit", func(t *testing.T) string {
			return writeBytes(t, binary.LittleEndian.AppendUint64(nil, 1<<40))
		}, "exceeds the 104857600-byte limit"},
		{"JSON array", func(t *testing.T) string {
			b := append([]byte(nil), good...)
			b[8] = '['
			return writeBytes(t, b)
		}, "header is not a JSON object"},
		{"bad JSON", func(t *testing.T) string {
			b := append([]byte(nil), good...)
			b[9] = ']'
			return writeBytes(t, b)
		}, "invalid JSON header"},
		{"dtype I8", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("I8", []int{2, 2}, 0, 4), "b": tensor("F32", []int{2}, 4, 12)}, data[:12])
		}, `tensor "W": unsupported dtype "I8"`},
		{"shape mismatch b", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 2}, 0, 16), "b": tensor("F32", []int{4}, 16, 32)}, data)
		}, `shape mismatch: tensor "b" has shape [4], want [2]`},
		{"shape mismatch mean", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 2}, 0, 16), "b": tensor("F32", []int{2}, 16, 24),
				"scaler.mean": tensor("F32", []int{1}, 24, 28), "scaler.scale": tensor("F32", []int{1}, 28, 32)}, data)
		}, `shape mismatch: tensor "scaler.`},
		{"shape vs offsets", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 3}, 0, 16), "b": tensor("F32", []int{2}, 16, 24)}, data[:24])
		}, `tensor "W": shape [2 3] of F32 needs 24 bytes but data_offsets [0, 16] span 16`},
		{"W not 2-D", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{4}, 0, 16), "b": tensor("F32", []int{2}, 16, 24)}, data[:24])
		}, `tensor "W": shape [4], want [N, T]`},
		{"offsets overlap", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 2}, 0, 16), "b": tensor("F32", []int{2}, 8, 16)}, data[:16])
		}, `overlap`},
		{"gap", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 2}, 0, 16), "b": tensor("F32", []int{2}, 20, 28)}, data[:28])
		}, `gap in data: bytes 16..20`},
		{"trailing bytes", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 2}, 0, 16), "b": tensor("F32", []int{2}, 16, 24)}, data)
		}, `8 trailing bytes`},
		{"missing W", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"b": tensor("F32", []int{2}, 0, 8)}, data[:8])
		}, `missing tensor "W"`},
		{"unknown tensor", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 2}, 0, 16), "b": tensor("F32", []int{2}, 16, 24),
				"extra": tensor("F32", []int{2}, 24, 32)}, data)
		}, `unexpected tensor "extra"`},
		{"NaN weight", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F32", []int{2, 3}, 0, 24), "b": tensor("F32", []int{3}, 24, 36)},
				append(nanData, f32bytes([]float32{0})...))
		}, `W[1] is NaN`},
		{"F64 overflows float32", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"W": tensor("F64", []int{1, 1}, 0, 8), "b": tensor("F64", []int{1}, 8, 16)},
				f64bytes([]float64{1e300, 0}))
		}, `W[0] is +Inf`},
		{"wrong format", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"__metadata__": map[string]string{"format": "other"},
				"W": tensor("F32", []int{1, 1}, 0, 4), "b": tensor("F32", []int{1}, 4, 8)}, data[:8])
		}, `metadata format "other"`},
		{"bad classes", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"__metadata__": map[string]string{"classes": `["a","b"]`},
				"W": tensor("F32", []int{1, 1}, 0, 4), "b": tensor("F32", []int{1}, 4, 8)}, data[:8])
		}, `metadata lists 2 class names but W has 1 classes`},
		{"metadata not strings", func(t *testing.T) string {
			return writeRaw(t, map[string]any{"__metadata__": map[string]any{"epochs": 5},
				"W": tensor("F32", []int{1, 1}, 0, 4), "b": tensor("F32", []int{1}, 4, 8)}, data[:8])
		}, `invalid __metadata__`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.file(t)
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, p) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to name %s and contain %q", msg, p, tc.want)
			}
		})
	}
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	if err := Save(p, sample()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)

	bad := sample()
	bad.W[2] = float32(math.Inf(-1))
	if err := Save(p, bad); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "W[2] is -Inf") {
		t.Errorf("Save of invalid model: %v", err)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Error("failed Save changed the existing file")
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only the model", names)
	}

	// A directory at the target path makes the final step fail.
	target := filepath.Join(dir, "sub")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Save(target, sample()); err == nil || !strings.Contains(err.Error(), target) {
		t.Errorf("Save over a directory: %v", err)
	}
	if names := listDir(t, dir); len(names) != 2 {
		t.Errorf("directory holds %v, want the model and sub only", names)
	}
	// Missing parent directory.
	if err := Save(filepath.Join(dir, "no", "m.safetensors"), sample()); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
	// Overwriting works and replaces the content.
	m := sample()
	m.B[0] = 42
	if err := Save(p, m); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil || got.B[0] != 42 {
		t.Errorf("after overwrite: %v, b = %v", err, got.B)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m *Model)
		want string
	}{
		{"ok", func(m *Model) {}, ""},
		{"W length", func(m *Model) { m.W = m.W[:5] }, "W has 5 values, want N×T = 3×2"},
		{"b length", func(m *Model) { m.B = nil }, "b has 0 values"},
		{"mean without std", func(m *Model) { m.Std = nil }, "need both or neither"},
		{"mean length", func(m *Model) { m.Mean = m.Mean[:2] }, "mean has 2 values"},
		{"classes", func(m *Model) { m.Classes = []string{"a"} }, "1 class names"},
		{"NaN bias", func(m *Model) { m.B[1] = float32(math.NaN()) }, "b[1] is NaN"},
		{"reserved meta", func(m *Model) { m.Meta["format"] = "x" }, `"format" is reserved`},
		{"no features", func(m *Model) { m.N = 0 }, "0 features"},
		{"zero std", func(m *Model) { m.Std[2] = 0 }, "scaler.std[2] is 0, want > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := sample()
			tc.edit(m)
			err := m.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPredict(t *testing.T) {
	m := sample()
	if err := m.CheckInput(784); err == nil || err.Error() != "model expects 3 features, data has 784" {
		t.Errorf("CheckInput: %v", err)
	}
	x := []float32{3, 2, 1, 1, 2, 5} // raw rows
	m.ScaleInputs(x, 2)              // → {1, 0, -4}, {0, 0, 4}
	want := []float32{1, 0, -4, 0, 0, 4}
	if !equal(x, want) {
		t.Fatalf("scaled %v, want %v", x, want)
	}
	out := make([]float32, 4)
	if err := m.Logits(x, 2, out); err != nil {
		t.Fatal(err)
	}
	// row 0: 0.1 + 1*0.5 + (-4)*(-3.5) = 14.6 ; -0.2 + 1*(-1) + (-4)*1e-30 = -1.2
	// row 1: 0.1 + 4*(-3.5) = -13.9         ; -0.2 + 4*1e-30 = -0.2
	wantL := []float32{14.6, -1.2, -13.9, -0.2}
	for i := range wantL {
		if math.Abs(float64(out[i]-wantL[i])) > 1e-5 {
			t.Fatalf("logits %v, want %v", out, wantL)
		}
	}
	labels, probs, err := m.Predict(x, 2)
	if err != nil {
		t.Fatal(err)
	}
	if labels[0] != 0 || labels[1] != 1 {
		t.Errorf("labels %v, want [0 1]", labels)
	}
	for r := 0; r < 2; r++ {
		s := probs[2*r] + probs[2*r+1]
		if math.Abs(float64(s)-1) > 1e-6 {
			t.Errorf("row %d probabilities %v sum to %v", r, probs[2*r:2*r+2], s)
		}
	}
	p1 := 1 / (1 + math.Exp(-0.2-13.9)) // softmax of class 1 in row 1
	if math.Abs(float64(probs[3])-p1) > 1e-6 {
		t.Errorf("probs %v, want row 1 class 1 = %v", probs, p1)
	}
}

// TestPythonSafetensors checks that Python's safetensors library reads a
// saved model. It skips unless python3 with numpy and safetensors is
// available.
func TestPythonSafetensors(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	if out, err := exec.Command(py, "-c", "import numpy, safetensors.numpy").CombinedOutput(); err != nil {
		t.Skipf("python3 cannot import numpy and safetensors (pip install safetensors numpy): %s", bytes.TrimSpace(out))
	}
	p := filepath.Join(t.TempDir(), "model.safetensors")
	m := sample()
	if err := Save(p, m); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="np") as f:
    meta = f.metadata()
print(json.dumps({
    "keys": sorted(t.keys()),
    "W": t["W"].astype(np.float64).ravel().tolist(), "W_shape": list(t["W"].shape), "W_dtype": str(t["W"].dtype),
    "b": t["b"].astype(np.float64).tolist(),
    "mean": t["scaler.mean"].astype(np.float64).tolist(),
    "meta": meta,
}))
`
	out, err := exec.Command(py, "-c", script, p).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var got struct {
		Keys    []string
		W       []float64
		WShape  []int  `json:"W_shape"`
		WDtype  string `json:"W_dtype"`
		B, Mean []float64
		Meta    map[string]string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Join(got.Keys, ",") != "W,b,scaler.mean,scaler.std" || got.WDtype != "float32" ||
		len(got.WShape) != 2 || got.WShape[0] != 3 || got.WShape[1] != 2 {
		t.Errorf("python sees keys %v, W %v %s", got.Keys, got.WShape, got.WDtype)
	}
	for i, w := range m.W {
		if float32(got.W[i]) != w {
			t.Errorf("python W = %v, want %v", got.W, m.W)
			break
		}
	}
	if float32(got.B[1]) != m.B[1] || float32(got.Mean[2]) != m.Mean[2] {
		t.Errorf("python b %v mean %v", got.B, got.Mean)
	}
	if got.Meta["format"] != Format || got.Meta["epochs"] != "5" || got.Meta["classes"] != `["cat","dog \"big\""]` {
		t.Errorf("python metadata %v", got.Meta)
	}
}
