package data

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// stTensor is one tensor of a test safetensors file.
type stTensor struct {
	name, dtype string
	shape       []int
	data        []byte
}

// stBytes builds a safetensors file holding the tensors in order.
func stBytes(ts ...stTensor) []byte {
	h := map[string]any{"__metadata__": map[string]string{"by": "test"}}
	var data []byte
	for _, t := range ts {
		h[t.name] = map[string]any{"dtype": t.dtype, "shape": t.shape, "data_offsets": []int{len(data), len(data) + len(t.data)}}
		data = append(data, t.data...)
	}
	hj, _ := json.Marshal(h)
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	return append(append(b, hj...), data...)
}

func f32le(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func i64le(v ...int64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

func TestLoadSafetensors(t *testing.T) {
	x := f32le(1, 2, 3, 4, 5, 6)
	y := i64le(1, 0, 1)
	for _, tc := range []struct {
		name     string
		file     []byte
		o        Options
		labelled bool
	}{
		{"defaults", stBytes(stTensor{"features", "F32", []int{3, 2}, x}, stTensor{"labels", "I64", []int{3}, y}), Options{}, true},
		{"x and y", stBytes(stTensor{"y", "I64", []int{3}, y}, stTensor{"x", "F32", []int{3, 2}, x}), Options{}, true},
		{"named", stBytes(stTensor{"emb", "F32", []int{3, 2}, x}, stTensor{"cls", "U8", []int{3, 1}, []byte{1, 0, 1}}),
			Options{FeaturesTensor: "emb", LabelsTensor: "cls"}, true},
		{"F64", stBytes(stTensor{"x", "F64", []int{3, 2}, i64le(
			int64(math.Float64bits(1)), int64(math.Float64bits(2)), int64(math.Float64bits(3)),
			int64(math.Float64bits(4)), int64(math.Float64bits(5)), int64(math.Float64bits(6)))},
			stTensor{"labels", "I32", []int{3}, []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}}), Options{}, true},
		{"features only", stBytes(stTensor{"features", "F32", []int{3, 2}, x}), Options{Unlabelled: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, filepath.Join(t.TempDir(), "d.safetensors"), tc.file)
			s, err := LoadFile(p, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != 3 || s.N != 2 || s.X[5] != 6 || s.X[0] != 1 || s.Stats.Format != "safetensors" {
				t.Fatalf("Rows=%d N=%d X=%v stats %+v", s.Rows, s.N, s.X, s.Stats)
			}
			if s.Labelled() != tc.labelled {
				t.Fatalf("labelled = %v", s.Labelled())
			}
			if tc.labelled && (s.Classes != 2 || s.Y[0] != 1 || s.Y[1] != 0 || s.Y[2] != 1) {
				t.Errorf("Y = %v, classes %d", s.Y, s.Classes)
			}
		})
	}
	// Labels from a separate .npy file.
	dir := t.TempDir()
	p := write(t, filepath.Join(dir, "d.safetensors"), stBytes(stTensor{"features", "F32", []int{3, 2}, x}))
	lab := write(t, filepath.Join(dir, "y.npy"), npyOf(t, []int{3}, []int64{2, 2, 0}))
	if s, err := LoadFile(p, Options{Labels: lab}); err != nil || s.Classes != 3 || s.Y[0] != 2 {
		t.Errorf("labels file: %v %+v", err, s)
	}
}

func TestLoadSafetensorsErrors(t *testing.T) {
	x := f32le(1, 2, 3, 4, 5, 6)
	y := i64le(1, 0, 1)
	for _, tc := range []struct {
		name string
		file []byte
		o    Options
		want string
	}{
		{"no features", stBytes(stTensor{"W", "F32", []int{3, 2}, x}), Options{},
			"no features tensor (looked for features, x, X, embeddings, inputs); it holds \"W\""},
		{"named missing", stBytes(stTensor{"x", "F32", []int{3, 2}, x}), Options{FeaturesTensor: "emb"}, `no tensor "emb"; it holds "x"`},
		{"labels missing", stBytes(stTensor{"x", "F32", []int{3, 2}, x}), Options{LabelsTensor: "cls"}, `no tensor "cls"; it holds "x"`},
		{"no labels", stBytes(stTensor{"x", "F32", []int{3, 2}, x}), Options{}, "no labels"},
		{"BF16", stBytes(stTensor{"x", "BF16", []int{3, 2}, make([]byte, 12)}), Options{Unlabelled: true}, `tensor "x": dtype BF16 is not supported`},
		{"row mismatch", stBytes(stTensor{"x", "F32", []int{3, 2}, x}, stTensor{"y", "I64", []int{2}, y[:16]}), Options{},
			`tensor "x" has 3 rows but tensor "y" has 2 labels`},
		{"float labels", stBytes(stTensor{"x", "F32", []int{3, 2}, x}, stTensor{"y", "F32", []int{3}, x[:12]}), Options{}, "want integers"},
		{"NaN", stBytes(stTensor{"x", "F32", []int{3, 2}, f32le(1, 2, 3, float32(math.Inf(-1)), 5, 6)}), Options{Unlabelled: true},
			`tensor "x": row 1, column 1: feature is -Inf`},
		{"claims more than the file", func() []byte {
			b := stBytes(stTensor{"x", "F32", []int{3, 2}, x})
			return b[:len(b)-4]
		}(), Options{Unlabelled: true}, "truncated"},
		{"features vs model", stBytes(stTensor{"x", "F32", []int{3, 2}, x}), Options{Unlabelled: true, Features: 784}, "2 features per row, want 784"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, filepath.Join(t.TempDir(), "d.safetensors"), tc.file)
			_, err := LoadFile(p, tc.o)
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to name %s and contain %q", err, p, tc.want)
			}
		})
	}
}

// TestLoadFileCSV: a CSV of features only is told from a labelled one by
// the number of columns the caller expects.
func TestLoadFileCSV(t *testing.T) {
	dir := t.TempDir()
	labelled := write(t, filepath.Join(dir, "l.csv"), []byte("label,a,b\n1,0.5,2\n\n0,1,1\n"))
	features := write(t, filepath.Join(dir, "f.csv"), []byte("a,b\n0.5,2\n1,1\n"))
	noHeader := write(t, filepath.Join(dir, "n.csv"), []byte("0.5,2\n1.5,1\n"))
	s, err := LoadFile(labelled, Options{Features: 2, Unlabelled: true})
	if err != nil || !s.Labelled() || s.Rows != 2 || s.Y[0] != 1 {
		t.Fatalf("labelled CSV: %v %+v", err, s)
	}
	if got := s.Stats.Skipped; len(got) != 2 || got[0] != (Skipped{1, "header line"}) || got[1] != (Skipped{1, "blank lines"}) {
		t.Errorf("skipped %+v, want one header line and one blank line", got)
	}
	for _, p := range []string{features, noHeader} {
		s, err = LoadFile(p, Options{Features: 2, Unlabelled: true})
		if err != nil || s.Labelled() || s.Rows != 2 || s.N != 2 || s.X[2] != 1 && s.X[2] != 1.5 {
			t.Fatalf("%s: %v %+v", p, err, s)
		}
	}
	if s.X[0] != 0.5 || s.X[2] != 1.5 {
		t.Errorf("first column read as a label? X = %v", s.X)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Features: 3, Unlabelled: true}, "rows have 2 columns: want 3 features, or a label and 3 features"},
		{Options{Features: 2}, "rows have 2 columns: want a label and 2 features"},
		{Options{Labels: labelled}, "a separate labels file"},
	} {
		if _, err := LoadFile(features, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), features) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	// A feature-only row with a bad column says which.
	bad := write(t, filepath.Join(dir, "b.csv"), []byte("0.5,2\n1,x\n"))
	if _, err := LoadFile(bad, Options{Features: 2, Unlabelled: true}); err == nil || !strings.Contains(err.Error(), "b.csv:2: column 2") {
		t.Errorf("bad value: %v", err)
	}
}

func TestClassesBound(t *testing.T) {
	dir := t.TempDir()
	p := write(t, filepath.Join(dir, "c.csv"), []byte("0,1\n1000000,2\n"))
	_, err := LoadFile(p, Options{})
	if !errors.Is(err, ErrTooManyClasses) || !strings.Contains(err.Error(), "row 1: label 1000000 would make 1000001 classes: too many classes to infer (more than 100000 without a class count)") {
		t.Errorf("inferred: %v", err)
	}
	s, err := LoadFile(p, Options{Classes: 1000001})
	if err != nil || s.Classes != 1000001 {
		t.Errorf("given: %v %+v", err, s)
	}
	if _, err := LoadFile(p, Options{Classes: 10}); err == nil || !strings.Contains(err.Error(), "label 1000000 out of range [0, 10)") {
		t.Errorf("below the labels: %v", err)
	}
	x := write(t, filepath.Join(dir, "x.npy"), npyOf(t, []int{2, 1}, []float32{1, 2}))
	y := write(t, filepath.Join(dir, "y.npy"), npyOf(t, []int{2}, []int32{0, math.MaxInt32}))
	if _, err := LoadFile(x, Options{Labels: y}); !errors.Is(err, ErrTooManyClasses) {
		t.Errorf(".npy labels: %v", err)
	}
}

func TestLoadFileIDX(t *testing.T) {
	dir := t.TempDir()
	pix, labels := sample(4, 2, 2)
	img := write(t, filepath.Join(dir, "img"), gz(idxBytes(idxImageMagic, []uint32{4, 2, 2}, pix)))
	lab := write(t, filepath.Join(dir, "lab"), idxBytes(idxLabelMagic, []uint32{4}, labels))
	s, err := LoadFile(img, Options{Labels: lab})
	if err != nil || s.Rows != 4 || s.N != 4 || s.Classes != 10 || s.Stats.Format != "idx" {
		t.Fatalf("%v %+v", err, s)
	}
	s, err = LoadFile(img, Options{Unlabelled: true, Features: 4})
	if err != nil || s.Labelled() || s.X[5] != float32(pix[5]) {
		t.Fatalf("unlabelled: %v %+v", err, s)
	}
	if _, err := LoadFile(img, Options{}); !errors.Is(err, ErrNoLabels) {
		t.Errorf("no labels: %v", err)
	}
	if _, err := LoadFile(lab, Options{}); err == nil || !strings.Contains(err.Error(), "an IDX labels file") {
		t.Errorf("labels as data: %v", err)
	}
	// IDX labels for .npy features.
	x := write(t, filepath.Join(dir, "x.npy"), npyOf(t, []int{4, 4}, make([]float32, 16)))
	if s, err := LoadFile(x, Options{Labels: lab}); err != nil || s.Y[3] != int32(labels[3]) {
		t.Errorf("IDX labels for .npy: %v", err)
	}
}

// TestIDXProgress: reading IDX files reports progress as the other formats
// do, up to the bodies' total (uncompressed, all four files for a folder),
// never backwards.
func TestIDXProgress(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := t.TempDir()
		writeDir(t, dir, gzipped)
		var calls [][2]int64
		progress := func(done, total int64) { calls = append(calls, [2]int64{done, total}) }
		check := func(what string, total int64) {
			t.Helper()
			if len(calls) == 0 || calls[len(calls)-1] != [2]int64{total, total} {
				t.Errorf("gzip=%v %s: progress %v, want it to end at %d of %d", gzipped, what, calls, total, total)
			}
			for i := 1; i < len(calls); i++ {
				if calls[i][0] < calls[i-1][0] || calls[i][1] != total {
					t.Errorf("gzip=%v %s: progress %v goes back or changes its total", gzipped, what, calls)
				}
			}
			calls = nil
		}
		// 5 and 2 images of 2×3 pixels and their labels.
		if _, _, err := LoadDirOptions(dir, Options{Progress: progress}); err != nil {
			t.Fatal(err)
		}
		check("folder", 5*6+5+2*6+2)
		suffix := map[bool]string{false: "", true: ".gz"}[gzipped]
		if _, err := LoadFile(filepath.Join(dir, "t10k-images-idx3-ubyte"+suffix),
			Options{Labels: filepath.Join(dir, "t10k-labels-idx1-ubyte"+suffix), Progress: progress}); err != nil {
			t.Fatal(err)
		}
		check("file", 2*6+2)
	}
}
