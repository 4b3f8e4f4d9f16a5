package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// npyBytes builds a .npy file with any header dictionary and raw data.
func npyBytes(dict string, data []byte) []byte {
	total := 10 + len(dict) + 1
	dict += strings.Repeat(" ", (64-total%64)%64) + "\n"
	b := append([]byte(npyMagic), 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)))
	return append(append(b, dict...), data...)
}

func npyOf[E npyElem](t testing.TB, shape []int, v []E) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteNPY(&buf, shape, v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteNPYHeader(t *testing.T) {
	b := npyOf(t, []int{3}, []int64{1, 2, 3})
	// What numpy 1.x writes for np.save(f, np.array([1, 2, 3])), byte for byte.
	want := "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }" + strings.Repeat(" ", 60) + "\n"
	if string(b[:128]) != want || len(b) != 128+24 {
		t.Errorf("header %q", b[:min(len(b), 128)])
	}
	if _, err := NewNPYWriter[float32](&bytes.Buffer{}, []int{-1}); err == nil {
		t.Error("negative shape accepted")
	}
	nw, _ := NewNPYWriter[float32](&bytes.Buffer{}, []int{2})
	if err := nw.Write(1, 2, 3); err == nil {
		t.Error("writing past the shape accepted")
	}
	nw, _ = NewNPYWriter[float32](&bytes.Buffer{}, []int{2})
	nw.Write(1)
	if err := nw.Close(); err == nil {
		t.Error("closing a short array accepted")
	}
}

// TestLoadNPY reads every dtype dsx accepts, in both byte orders, with
// labels from a second .npy file.
func TestLoadNPY(t *testing.T) {
	x := []float32{0.5, -1, 3, 1e-3, 7, 255} // 3 rows × 2
	ints := []float32{1, 0, 255, 7, 3, 200}
	labels := []int64{2, 0, 1}
	enc := func(descr string, size int, put func(b []byte, v float64)) []byte {
		var data []byte
		for _, v := range x {
			b := make([]byte, size)
			put(b, float64(v))
			data = append(data, b...)
		}
		return npyBytes("{'descr': '"+descr+"', 'fortran_order': False, 'shape': (3, 2), }", data)
	}
	le, be := binary.LittleEndian, binary.BigEndian
	type npyCase struct {
		data []byte
		size int // bytes per feature
		want []float32
	}
	cases := map[string]npyCase{
		"f4":     {npyOf(t, []int{3, 2}, x), 4, x},
		"f4 big": {enc(">f4", 4, func(b []byte, v float64) { be.PutUint32(b, math.Float32bits(float32(v))) }), 4, x},
		"f8":     {enc("<f8", 8, func(b []byte, v float64) { le.PutUint64(b, math.Float64bits(v)) }), 8, x},
		"f8 big": {enc(">f8", 8, func(b []byte, v float64) { be.PutUint64(b, math.Float64bits(v)) }), 8, x},
		"u1":     {npyOf(t, []int{3, 2}, []uint8{1, 0, 255, 7, 3, 200}), 1, ints},
		"i4":     {npyOf(t, []int{3, 2}, []int32{1, 0, 255, 7, 3, 200}), 4, ints},
		"i8":     {npyOf(t, []int{3, 1, 2}, []int64{1, 0, 255, 7, 3, 200}), 8, ints}, // (rows, 1, 2): 2 features
	}
	dir := t.TempDir()
	lab := write(t, filepath.Join(dir, "y.npy"), npyOf(t, []int{3}, labels))
	lab2 := write(t, filepath.Join(dir, "y2.npy"), npyOf(t, []int{3, 1}, []uint8{2, 0, 1}))
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := write(t, filepath.Join(t.TempDir(), "x.npy"), tc.data)
			var prog []int64
			s, err := LoadFile(p, Options{Labels: lab, Progress: func(done, total int64) { prog = append(prog, done, total) }})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if s.Rows != 3 || s.N != 2 || s.Classes != 3 || len(s.X) != 6 {
				t.Fatalf("Rows=%d N=%d Classes=%d len(X)=%d", s.Rows, s.N, s.Classes, len(s.X))
			}
			for i := range want {
				if s.X[i] != want[i] {
					t.Fatalf("X = %v, want %v", s.X, want)
				}
			}
			for i, l := range labels {
				if s.Y[i] != int32(l) {
					t.Fatalf("Y = %v, want %v", s.Y, labels)
				}
			}
			if st := s.Stats; st.Format != "npy" || st.RowsRead != 3 || st.Bytes != int64(6*tc.size+3*8) {
				t.Errorf("stats %+v", st)
			}
			if n := len(prog); n < 2 || prog[n-2] != prog[n-1] || prog[n-1] != s.Stats.Bytes {
				t.Errorf("progress %v does not end at the total %d", prog, s.Stats.Bytes)
			}
			if !strings.Contains(s.Source, "x.npy") || !strings.Contains(s.Source, "y.npy") {
				t.Errorf("source %q", s.Source)
			}
		})
	}
	// (rows, 1) labels of another integer type; a given class count.
	p := write(t, filepath.Join(dir, "x.npy"), cases["f4"].data)
	s, err := LoadFile(p, Options{Labels: lab2, Classes: 5})
	if err != nil || s.Classes != 5 || s.Y[0] != 2 {
		t.Errorf("(rows, 1) u1 labels with 5 classes: %v %+v", err, s)
	}
	// Without labels where they are optional.
	s, err = LoadFile(p, Options{Unlabelled: true})
	if err != nil || s.Labelled() || s.Classes != 0 || s.Rows != 3 {
		t.Errorf("unlabelled: %v %+v", err, s)
	}
	if _, err := LoadFile(p, Options{}); !errors.Is(err, ErrNoLabels) || !strings.Contains(err.Error(), p) {
		t.Errorf("labels needed: %v", err)
	}
}

func TestLoadNPYErrors(t *testing.T) {
	f4 := func(shape string, n int) []byte {
		return npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': "+shape+", }", make([]byte, 4*n))
	}
	good := f4("(3, 2)", 6)
	nan := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(nan[len(nan)-12:], math.Float32bits(float32(math.NaN()))) // row 1, column 1
	f8big := npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
		binary.LittleEndian.AppendUint64(make([]byte, 8), math.Float64bits(1e39)))
	dir := t.TempDir()
	labels := func(name string, b []byte) string { return write(t, filepath.Join(dir, name), b) }
	y3 := labels("y3.npy", npyOf(t, []int{3}, []int64{0, 1, 2}))
	for _, tc := range []struct {
		name   string
		file   []byte
		o      Options
		want   string
		labels bool // the error names the labels file, not the features file
	}{
		{"truncated", good[:len(good)-3], Options{Unlabelled: true}, "truncated: header says shape (3, 2) of float32 (24 bytes) but only 21 bytes follow", false},
		{"trailing", append(append([]byte(nil), good...), 0, 0), Options{Unlabelled: true}, "2 bytes of unexpected data after the array", false},
		{"huge shape, small file", f4("(1000000, 1024)", 6), Options{Unlabelled: true}, "truncated: header says shape (1000000, 1024) of float32 (4096000000 bytes) but only 24 bytes follow", false},
		{"overflowing shape", f4("(4294967296, 4294967296, 16)", 6), Options{Unlabelled: true}, "overflows", false},
		{"fortran order", npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", make([]byte, 24)), Options{Unlabelled: true}, "Fortran order", false},
		{"float16", npyBytes("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", make([]byte, 12)), Options{Unlabelled: true}, "float16", false},
		{"structured", npyBytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", make([]byte, 12)), Options{Unlabelled: true}, "structured", false},
		{"complex", npyBytes("{'descr': '<c8', 'fortran_order': False, 'shape': (3, 2), }", make([]byte, 48)), Options{Unlabelled: true}, "unsupported dtype", false},
		{"1-D features", f4("(6,)", 6), Options{Unlabelled: true}, "x.reshape(-1, 1)", false},
		{"no rows", f4("(0, 2)", 0), Options{Unlabelled: true}, "empty set", false},
		{"no features", f4("(3, 0)", 0), Options{Unlabelled: true}, "no features", false},
		{"missing key", npyBytes("{'descr': '<f4', 'shape': (3, 2), }", make([]byte, 24)), Options{Unlabelled: true}, "needs descr, fortran_order and shape", false},
		{"version", append([]byte(npyMagic+"\x09\x00"), make([]byte, 40)...), Options{Unlabelled: true}, "unsupported .npy format version 9.0", false},
		{"header length", append([]byte(npyMagic+"\x02\x00\xff\xff\xff\x7f"), make([]byte, 40)...), Options{Unlabelled: true}, "exceeds", false},
		{"header cut", []byte(npyMagic + "\x01\x00\x40\x00{'descr'"), Options{Unlabelled: true}, "truncated: .npy header length 64 but only 8 bytes follow", false},
		{"NaN", nan, Options{Unlabelled: true}, "row 1, column 1: feature is NaN", false},
		{"f8 beyond float32", f8big, Options{Unlabelled: true}, "row 0, column 1: feature 1e+39 is out of float32 range", false},
		{"wrong feature count", good, Options{Unlabelled: true, Features: 3}, "2 features per row, want 3", false},
		{"label count", f4("(2, 2)", 4), Options{Labels: y3}, "has 2 rows but labels file " + y3 + " has 3 labels", false},
		{"float labels", good, Options{Labels: labels("yf.npy", npyOf(t, []int{3}, []float64{0, 1, 2}))}, "want integers (save y.astype(np.int64))", true},
		{"2-D labels", good, Options{Labels: labels("y2.npy", npyOf(t, []int{3, 2}, make([]int64, 6)))}, "labels of shape (3, 2)", true},
		{"negative label", good, Options{Labels: labels("yn.npy", npyOf(t, []int{3}, []int32{0, -4, 1}))}, "row 1: negative label -4", true},
		{"label ≥ 2^31", good, Options{Labels: labels("yb.npy", npyOf(t, []int{3}, []int64{0, 1 << 40, 1}))}, "row 1: label 1099511627776 is too large", true},
		{"label ≥ classes", good, Options{Classes: 2, Labels: y3}, "row 2: label 2 out of range [0, 2)", true},
		{"labels not npy", good, Options{Labels: labels("y.csv", []byte("0\n1\n2\n"))}, "want a .npy array of integers or an IDX labels file", true},
		{"npz", []byte("PK\x03\x04rest of a zip"), Options{}, "np.save", false},
		{"gzipped npy", gz(good), Options{}, "decompress it first", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, filepath.Join(t.TempDir(), "x.npy"), tc.file)
			_, err := LoadFile(p, tc.o)
			if err == nil {
				t.Fatal("no error")
			}
			file := p
			if tc.labels {
				file = tc.o.Labels
			}
			if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to name %s and contain %q", msg, file, tc.want)
			}
		})
	}
}

func TestParseNPYDict(t *testing.T) {
	for _, tc := range []struct {
		dict  string
		shape []int
		ok    bool
	}{
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", []int{2, 3}, true},
		{`{"shape": (5L,), "fortran_order": False, "descr": "|u1"}`, []int{5}, true}, // Python 2, other key order
		{"{'descr':'<f8','fortran_order':False,'shape':()}", nil, true},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", nil, false},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}", nil, false},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", nil, false},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} trailing", nil, false},
		{"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", nil, false},
		{"{'descr': 'f4', 'fortran_order': False, 'shape': (2,)}", nil, false},
		{"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", nil, false},
		{"", nil, false},
	} {
		h, err := parseNPYDict(tc.dict)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.dict, err, tc.ok)
			continue
		}
		if tc.ok && len(h.shape) != len(tc.shape) {
			t.Errorf("%s: shape %v, want %v", tc.dict, h.shape, tc.shape)
		}
	}
}

// TestLoadNPYParallel reads in several parts (the threshold lowered),
// copied and mapped: the values land in place, and of two bad values the
// first in the file is reported whichever part finds its own first.
func TestLoadNPYParallel(t *testing.T) {
	defer func(p int64) { parallelBytes = p }(parallelBytes)
	parallelBytes = 1
	const rows, n = 3001, 7
	x := make([]float32, rows*n)
	for i := range x {
		x[i] = float32(i) * 0.5
	}
	x64 := make([]float64, len(x))
	for i, v := range x {
		x64[i] = float64(v)
	}
	dir := t.TempDir()
	bad := append([]float32(nil), x...)
	bad[len(bad)-3] = float32(math.NaN()) // in the last part
	bad[2*n+1] = float32(math.Inf(1))     // in the first
	badPath := write(t, filepath.Join(dir, "bad.npy"), npyOf(t, []int{rows, n}, bad))
	for _, m := range []bool{false, true} {
		for name, b := range map[string][]byte{"f4": npyOf(t, []int{rows, n}, x), "f8": npyOf(t, []int{rows, n}, x64)} {
			s, err := LoadFile(write(t, filepath.Join(dir, name+".npy"), b), Options{Unlabelled: true, Map: m})
			if err != nil {
				t.Fatal(err)
			}
			for i := range x {
				if s.X[i] != x[i] {
					t.Fatalf("%s, Map %v: X[%d] = %v, want %v", name, m, i, s.X[i], x[i])
				}
			}
			s.Close()
		}
		_, err := LoadFile(badPath, Options{Unlabelled: true, Map: m})
		if err == nil || !strings.Contains(err.Error(), "row 2, column 1: feature is +Inf") {
			t.Errorf("Map %v: got %v, want the first bad value (row 2, column 1)", m, err)
		}
	}
}

// TestAnyNonFinite puts each non-finite value at every position of slices
// of every length up to 11 (the unrolled loop, the word tail and the odd
// last value), among the finite values nearest to them.
func TestAnyNonFinite(t *testing.T) {
	finite := []float32{0, -0, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 1, -2.5}
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0xffffffff)}
	for n := 0; n <= 11; n++ {
		v := make([]float32, n)
		for i := range v {
			v[i] = finite[i%len(finite)]
		}
		if anyNonFinite(v) {
			t.Fatalf("finite %v reported non-finite", v)
		}
		for pos := 0; pos < n; pos++ {
			for _, b := range bad {
				w := append([]float32(nil), v...)
				w[pos] = b
				if !anyNonFinite(w) {
					t.Fatalf("%v at %d of %d missed", b, pos, n)
				}
			}
		}
	}
}
