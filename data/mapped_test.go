package data

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestLoadMapped loads features with Options.Map: float32 in the host's
// byte order, aligned, is mapped in place (on Linux) and reads the same
// values as a copy; other types and a misaligned tensor are read as
// without Map. A write to a mapped X stays private; Close unmaps.
func TestLoadMapped(t *testing.T) {
	x := []float32{0.5, -1, 3, 1e-3, 7, 255}
	x64 := []float64{0.5, -1, 3, float64(float32(1e-3)), 7, 255}
	big := npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }", []byte{
		0x3f, 0, 0, 0, 0xbf, 0x80, 0, 0, 0x40, 0x40, 0, 0, 0x3a, 0x83, 0x12, 0x6f, 0x40, 0xe0, 0, 0, 0x43, 0x7f, 0, 0})
	onLinux := runtime.GOOS == "linux"
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		file   []byte
		mapped bool
	}{
		{"npy f4", npyOf(t, []int{3, 2}, x), onLinux},
		{"npy f4 big-endian", big, false},
		{"npy f8", npyOf(t, []int{3, 2}, x64), false},
		{"safetensors F32", stBytes(stTensor{"features", "F32", []int{3, 2}, f32le(x...)}), onLinux},
		{"safetensors F32 misaligned", stBytes(stTensor{"pad", "U8", []int{2}, []byte{1, 2}},
			stTensor{"features", "F32", []int{3, 2}, f32le(x...)}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")), tc.file)
			s, err := LoadFile(p, Options{Unlabelled: true, Map: true})
			if err != nil {
				t.Fatal(err)
			}
			if s.Stats.Mapped != tc.mapped {
				t.Errorf("Stats.Mapped = %v, want %v", s.Stats.Mapped, tc.mapped)
			}
			if len(s.X) != len(x) {
				t.Fatalf("len(X) = %d", len(s.X))
			}
			for i, v := range x {
				if s.X[i] != v {
					t.Fatalf("X = %v, want %v", s.X, x)
				}
			}
			s.X[0] = 42 // copy-on-write: the file keeps its bytes
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, tc.file) {
				t.Errorf("writing X changed the file (%v)", err)
			}
			if err := s.Close(); err != nil || s.X != nil && tc.mapped {
				t.Errorf("Close: %v, X %v", err, s.X)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestLoadMappedCut: a file cut short after its size was checked is an
// error when its mapping is read, not a crash. (Bad values in a mapped
// file: TestLoadNPYParallel.)
func TestLoadMappedCut(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("features are mapped on Linux only")
	}
	p := write(t, filepath.Join(t.TempDir(), "cut.npy"), npyOf(t, []int{4096, 4}, make([]float32, 4096*4)))
	f, size, err := openRegular(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := openNPY(f, p, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 200); err != nil { // after the size check, as another program might
		t.Fatal(err)
	}
	s := &Set{}
	if !a.mapFeatures(s) {
		t.Fatal("not mapped")
	}
	defer s.Close()
	if err := a.readFeatures(s.X, 4, nil); err == nil || !strings.Contains(err.Error(), "truncated while reading") {
		t.Errorf("got %v, want truncated while reading", err)
	}
}

// TestMappedCutInUse: a mapped file truncated after the load (np.save over
// the same name while dsx trains) makes Batch and FitScaler return an
// error naming the file instead of crashing the process with SIGBUS.
func TestMappedCutInUse(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("features are mapped on Linux only")
	}
	const rows, n = 4096, 4
	p := write(t, filepath.Join(t.TempDir(), "inuse.npy"), npyOf(t, []int{rows, n}, make([]float32, rows*n)))
	s, err := LoadFile(p, Options{Unlabelled: true, Map: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Stats.Mapped {
		t.Fatal("not mapped")
	}
	x, y := make([]float32, 2*n), make([]int32, 2)
	if err := s.Batch([]int{0, rows - 1}, x, y); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	if err := os.Truncate(p, 200); err != nil {
		t.Fatal(err)
	}
	err = s.Batch([]int{0, rows - 1}, x, y)
	if err == nil || !strings.Contains(err.Error(), "the file changed while dsx read it") || !strings.Contains(err.Error(), "inuse.npy") {
		t.Errorf("Batch after the cut: %v, want an error naming the file", err)
	}
	if _, err := FitScaler(s); err == nil || !strings.Contains(err.Error(), "the file changed") {
		t.Errorf("FitScaler after the cut: %v, want an error", err)
	}
}

// openRegular opens a file that is read at offsets (a .npy file), or
// says that it is not a regular file.
func openRegular(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("file %s: not a regular file", path)
	}
	return f, st.Size(), nil
}
