package data

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The seed corpora live in testdata/fuzz/FuzzNPY,
// testdata/fuzz/FuzzSafetensorsFeatures, testdata/fuzz/FuzzIDX and
// testdata/fuzz/FuzzCSV (go test runs them as tests, with the inputs the
// fuzzers found and that were fixed);
// `go test ./data -run TestWriteFuzzSeeds -write-seeds` rewrites the named
// seeds from the functions below. Fuzz with
// `go test ./data -run '^$' -fuzz '^FuzzNPY$'`, or `make fuzz` for all.
var writeSeeds = flag.Bool("write-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz")

func npySeeds(t testing.TB) map[string][]byte {
	f4 := func(shape string, data []byte) []byte {
		return npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': "+shape+", }", data)
	}
	var b3 []byte
	for _, v := range []float32{1, -2, 3.5, 0, 1e-20, 7} {
		b3 = append(b3, f32le(v)...)
	}
	return map[string][]byte{
		"f4":          f4("(3, 2)", b3),
		"f4-3d":       f4("(1, 2, 3)", b3),
		"f8":          npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,1), }", i64le(int64(math.Float64bits(1)), 2, int64(math.Float64bits(-3)))),
		"f4-big":      npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), }", []byte{0x3f, 0x80, 0, 0, 0x40, 0, 0, 0}),
		"u1":          npyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", []byte{0, 1, 2, 255}),
		"i8-labels":   npyOf(t, []int{3}, []int64{0, 1, 2}),
		"i4-labels":   npyOf(t, []int{3, 1}, []int32{2, 1, 0}),
		"v2":          npyV2("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }\n", f32le(1)),
		"huge-shape":  f4("(1000000, 1024)", b3),
		"overflow":    f4("(4294967296, 4294967296, 16)", b3),
		"nan":         f4("(1, 1)", []byte{0, 0, 0xc0, 0x7f}),
		"fortran":     npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", b3),
		"truncated":   f4("(3, 2)", b3[:20]),
		"header-long": append([]byte(npyMagic+"\x01\x00\xff\xff"), "{'descr'"...),
	}
}

// npyV2 builds a format 2.0 file (a 4-byte header length).
func npyV2(dict string, data []byte) []byte {
	b := append([]byte(npyMagic), 2, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)))
	return append(append(b, dict...), data...)
}

func safetensorsSeeds() map[string][]byte {
	x := f32le(1, 2, 3, 4, 5, 6)
	return map[string][]byte{
		"features-labels": stBytes(stTensor{"features", "F32", []int{3, 2}, x}, stTensor{"labels", "I64", []int{3}, i64le(0, 1, 2)}),
		"x-y-u8":          stBytes(stTensor{"x", "F32", []int{3, 2}, x}, stTensor{"y", "U8", []int{3}, []byte{1, 0, 1}}),
		"f64":             stBytes(stTensor{"x", "F64", []int{1, 2}, i64le(int64(math.Float64bits(1)), int64(math.Float64bits(-1)))}),
		"features-only":   stBytes(stTensor{"features", "F32", []int{2, 3}, x}),
		"bf16":            stBytes(stTensor{"x", "BF16", []int{3, 2}, x[:12]}),
		"overlap":         []byte("\x40\x00\x00\x00\x00\x00\x00\x00" + `{"x":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"y":{"dtype":"I8","shape":[1],"data_offsets":[4,5]}}`),
		"huge-claim":      append([]byte("\x50\x00\x00\x00\x00\x00\x00\x00"), `{"x":{"dtype":"F32","shape":[1000000,1024],"data_offsets":[0,4096000000]}}      `...),
		"nan":             stBytes(stTensor{"x", "F32", []int{1, 1}, []byte{0, 0, 0xc0, 0x7f}}),
	}
}

// TestWriteFuzzSeeds rewrites the seed corpora when -write-seeds is given.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("only with -write-seeds")
	}
	for dir, seeds := range map[string]map[string][]byte{"FuzzNPY": npySeeds(t), "FuzzSafetensorsFeatures": safetensorsSeeds(),
		"FuzzIDX": idxSeeds(), "FuzzCSV": csvSeeds()} {
		d := filepath.Join("testdata", "fuzz", dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			if err := os.WriteFile(filepath.Join(d, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkLoaded asserts what every successful load promises: consistent
// dimensions, finite features, labels in range, and memory bounded by the
// file: every element takes at least one byte of it.
func checkLoaded(t *testing.T, s *Set, fileBytes int) {
	t.Helper()
	if len(s.X) != s.Rows*s.N || s.Rows <= 0 || s.N <= 0 {
		t.Fatalf("Rows %d × N %d but %d features", s.Rows, s.N, len(s.X))
	}
	if len(s.X) > fileBytes {
		t.Fatalf("%d features from a %d-byte file", len(s.X), fileBytes)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("loaded set fails Validate: %v", err)
	}
}

func FuzzNPY(f *testing.F) {
	dir := f.TempDir()
	labels3 := filepath.Join(dir, "x3.npy")
	if err := os.WriteFile(labels3, npyOf(f, []int{3, 2}, make([]float32, 6)), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.npy")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// As features without labels, then as the labels of a 3-row file.
		if s, err := LoadFile(p, Options{Unlabelled: true}); err == nil {
			checkLoaded(t, s, len(b))
		} else {
			checkFuzzError(t, p, err)
		}
		if s, err := LoadFile(labels3, Options{Labels: p}); err != nil {
			checkFuzzError(t, p, err)
		} else {
			checkLoaded(t, s, 24)
			if len(s.Y) != 3 || s.Classes > MaxInferredClasses {
				t.Fatalf("labels %v, %d classes", s.Y, s.Classes)
			}
		}
	})
}

func FuzzSafetensorsFeatures(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.safetensors")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, o := range []Options{{Unlabelled: true}, {}} {
			if s, err := LoadFile(p, o); err != nil {
				checkFuzzError(t, p, err)
			} else {
				checkLoaded(t, s, len(b))
				if s.Labelled() && (len(s.Y) != s.Rows || s.Classes > MaxInferredClasses) {
					t.Fatalf("%d labels for %d rows, %d classes", len(s.Y), s.Rows, s.Classes)
				}
			}
		}
	})
}
