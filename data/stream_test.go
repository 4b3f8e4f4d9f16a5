package data

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/internal/testio"
)

// fifo is testio.FIFO: a named pipe that b is written into.
func fifo(t *testing.T, name string, b []byte) string { return testio.FIFO(t, name, b) }

// pipePath returns /dev/fd/N of a pipe that b is written into, as a
// shell's process substitution <(...) passes one.
func pipePath(t *testing.T, b []byte) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := fmt.Sprintf("/dev/fd/%d", r.Fd())
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no /dev/fd: %v", err)
	}
	go func() { w.Write(b); w.Close() }()
	t.Cleanup(func() { r.Close() })
	return p
}

// csvRows is a labelled CSV of rows lines "label,f1,f2,f3", about 20
// bytes a line: 20000 rows are several pipe buffers.
func csvRows(rows int) []byte {
	var b bytes.Buffer
	b.WriteString("label,a,b,c\n")
	for i := range rows {
		fmt.Fprintf(&b, "%d,%d.25,%d,-%d.5\n", i%3, i, i%7, i%11)
	}
	return b.Bytes()
}

// TestStreamsReadOnce: a CSV or IDX file (gzipped or not) through a FIFO
// or a pipe (/dev/fd/N, as <(...) gives) is opened once and every row
// arrives; peeking at its header (Features) loses nothing; .npy and
// safetensors streams and a second Load of a stream are clear errors, not
// a hang.
func TestStreamsReadOnce(t *testing.T) {
	const rows = 20000
	plain := csvRows(rows)
	img := idxBytes(idxImageMagic, []uint32{3, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	labels := write(t, filepath.Join(t.TempDir(), "labels"), idxBytes(idxLabelMagic, []uint32{3}, []byte{0, 1, 2}))
	for _, c := range []struct {
		name      string
		path      func() string
		o         Options
		rows, n   int
		peekFeatN int
	}{
		{"csv fifo", func() string { return fifo(t, "a.csv", plain) }, Options{}, rows, 3, 3},
		{"csv.gz fifo", func() string { return fifo(t, "a.csv.gz", gz(plain)) }, Options{}, rows, 3, 3},
		{"csv pipe", func() string { return pipePath(t, plain) }, Options{}, rows, 3, 3},
		{"csv.gz pipe", func() string { return pipePath(t, gz(plain)) }, Options{}, rows, 3, 3},
		{"csv fifo, features known", func() string { return fifo(t, "a.csv", plain) }, Options{Features: 3}, rows, 3, 3},
		{"idx fifo", func() string { return fifo(t, "img", img) }, Options{Labels: labels}, 3, 4, 4},
		{"idx.gz pipe", func() string { return pipePath(t, gz(img)) }, Options{Labels: labels}, 3, 4, 4},
		{"idx, labels through a fifo", func() string { return write(t, filepath.Join(t.TempDir(), "img"), img) },
			Options{Labels: fifo(t, "labels", idxBytes(idxLabelMagic, []uint32{3}, []byte{0, 1, 2}))}, 3, 4, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			// LoadFile alone.
			s, err := LoadFile(c.path(), c.o)
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != c.rows || s.N != c.n || len(s.Y) != c.rows {
				t.Errorf("LoadFile: %d rows × %d, %d labels; want %d × %d", s.Rows, s.N, len(s.Y), c.rows, c.n)
			}
			if c.rows == rows && (s.X[3*(rows-1)] != rows-1+0.25 || s.Y[rows-1] != (rows-1)%3) {
				t.Errorf("last row %v label %d", s.X[3*(rows-1):], s.Y[rows-1])
			}
			if c.o.Labels != "" && c.name == "idx, labels through a fifo" {
				return // the labels FIFO is read
			}
			// Open once, peek, then load.
			in, err := Open(c.path())
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if n, err := in.Features(c.o); err != nil || n != c.peekFeatN {
				t.Errorf("Features = %d, %v; want %d", n, err, c.peekFeatN)
			}
			if names, err := in.TensorNames(); names != nil || err != nil {
				t.Errorf("TensorNames = %v, %v", names, err)
			}
			s, err = in.Load(c.o)
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != c.rows {
				t.Errorf("Load after Features: %d rows, want %d", s.Rows, c.rows)
			}
			if _, err := in.Load(c.o); err == nil || !strings.Contains(err.Error(), "read once") {
				t.Errorf("second Load of a stream: %v", err)
			}
		})
	}
	x := npyOf(t, []int{3, 2}, []float32{1, 2, 3, 4, 5, 6})
	st := stBytes(stTensor{"features", "F32", []int{3, 2}, f32le(1, 2, 3, 4, 5, 6)}, stTensor{"labels", "I64", []int{3}, i64le(0, 1, 2)})
	for name, p := range map[string]string{
		"npy fifo": fifo(t, "x.npy", x), "npy pipe": pipePath(t, x), "safetensors fifo": fifo(t, "d.safetensors", st),
	} {
		_, err := LoadFile(p, Options{Unlabelled: true})
		if err == nil || !strings.Contains(err.Error(), "from a pipe or device") || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v; want an error saying a stream cannot be read that way", name, err)
		}
	}
	if _, err := PeekFeatures(fifo(t, "x.npy", x), Options{}); err == nil || !strings.Contains(err.Error(), "from a pipe or device") {
		t.Errorf("PeekFeatures of a .npy FIFO: %v", err)
	}
	for name, b := range map[string][]byte{"npy": x, "safetensors": st} {
		if _, err := LoadFile(fifo(t, "z", gz(b)), Options{Unlabelled: true}); err == nil || !strings.Contains(err.Error(), "gzip-compressed "+name) {
			t.Errorf("gzipped %s through a FIFO: %v", name, err)
		}
	}
	// An empty stream says so.
	if _, err := LoadFile(fifo(t, "e.csv", nil), Options{}); err == nil || !strings.Contains(err.Error(), "empty set") {
		t.Errorf("empty FIFO: %v", err)
	}
}
