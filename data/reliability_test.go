package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"dsx/internal/testio"
)

// allocated returns the bytes f allocates on the heap (all goroutines: run
// it from a test that is not parallel).
func allocated(f func()) uint64 { return testio.Allocated(f) }

// gzipZeros is a gzip file of head followed by n zero bytes: a few
// kilobytes that decompress to n bytes (a decompression bomb when n is
// large).
func gzipZeros(head []byte, n int) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(head)
	zero := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zero))
		w.Write(zero[:k])
		n -= k
	}
	w.Close()
	return buf.Bytes()
}

func idxHeader(magic uint32, dims ...uint32) []byte { return idxBytes(magic, dims, nil) }

// headerOnly bounds what a load that fails on a header may allocate:
// each open of a file costs two 1 MiB bufio buffers (file and gzip stream)
// and the gzip state, and a load opens up to three files (one twice, to
// tell its format). The bodies in these tests are 32 MiB or more.
const headerOnly = 12 << 20

// Everything a header can tell is checked before a body is read: a 32 KB
// gzip whose header claims one image of 4096×8192 (and holds it, as
// zeros) fails on the feature count or the label count having allocated
// nothing like its 32 MiB body (128 MiB as float32).
func TestIDXHeadersFirst(t *testing.T) {
	dir := t.TempDir()
	bomb := write(t, filepath.Join(dir, "bomb.gz"), gzipZeros(idxHeader(idxImageMagic, 1, 4096, 8192), 4096*8192))
	one := write(t, filepath.Join(dir, "one"), idxBytes(idxLabelMagic, []uint32{1}, []byte{3}))
	three := write(t, filepath.Join(dir, "three"), idxBytes(idxLabelMagic, []uint32{3}, []byte{3, 1, 2}))
	for _, c := range []struct {
		name string
		load func() error
		want string
	}{
		{"features", func() error { _, err := LoadFile(bomb, Options{Labels: one, Features: 784}); return err }, "images of 4096×8192 have 33554432 features, want 784"},
		{"features unlabelled", func() error { _, err := LoadFile(bomb, Options{Unlabelled: true, Features: 784}); return err }, "want 784"},
		{"label count", func() error { _, err := LoadIDX(bomb, three); return err }, "has 1 images but file " + three + " has 3 labels"},
		{"label count via LoadFile", func() error { _, err := LoadFile(bomb, Options{Labels: three}); return err }, "count mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			got := allocated(func() { err = c.load() })
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), bomb) {
				t.Errorf("error %v, want it to name %s and say %q", err, bomb, c.want)
			}
			if got > headerOnly {
				t.Errorf("allocated %d bytes before failing on the header", got)
			}
		})
	}
	// The same file with a matching model loads, holding what arrives.
	if s, err := LoadFile(bomb, Options{Labels: one, Features: 4096 * 8192}); err != nil || s.N != 4096*8192 || s.Y[0] != 3 {
		t.Errorf("real 32 MiB image: %v", err)
	}
}

// A header's claim never sizes an allocation beyond what the file can
// hold: uncompressed, the file's size must match it; gzipped, the claim
// must fit deflate's largest ratio, and the body is grown as it arrives.
func TestIDXClaimsBounded(t *testing.T) {
	dir := t.TempDir()
	claim := idxHeader(idxImageMagic, 60000, 28, 28)
	tiny := write(t, filepath.Join(dir, "tiny.gz"), gzipZeros(claim, 100))
	plain := write(t, filepath.Join(dir, "plain"), append(claim, make([]byte, 100)...))
	// Within deflate's ratio but short: 1 MiB of noise for a 47 MB claim.
	noise := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	short := write(t, filepath.Join(dir, "short.gz"), gz(append(claim, noise...)))
	lab := write(t, filepath.Join(dir, "lab"), idxBytes(idxLabelMagic, []uint32{60000}, make([]byte, 60000)))
	for _, c := range []struct {
		path, want string
		limit      uint64
	}{
		{tiny, "holds 47040000 bytes? truncated: header says 60000 images of 28×28 (47040000 bytes) but a gzip file of", headerOnly},
		{plain, "truncated: header says 60000 images of 28×28 (47040000 bytes) but only 100 bytes follow", headerOnly},
		{short, "truncated: header says 60000 images of 28×28 (47040000 bytes) but only 1048576 bytes follow", headerOnly + 3<<20},
	} {
		var err error
		got := allocated(func() { _, err = LoadIDX(c.path, lab) })
		want := c.want[strings.Index(c.want, "truncated"):]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", filepath.Base(c.path), err, want)
		}
		if got > c.limit {
			t.Errorf("%s: allocated %d bytes for a header's claim, want at most %d", filepath.Base(c.path), got, c.limit)
		}
	}
}

// LoadDirOptions checks the four headers against each other and against
// the caller's feature count before reading a body.
func TestLoadDirOptionsHeadersFirst(t *testing.T) {
	dir := t.TempDir()
	writeDir(t, dir, true)
	if _, _, err := LoadDirOptions(dir, Options{Features: 784}); !errors.Is(err, ErrFeatureCount) {
		t.Errorf("features: %v", err)
	}
	if train, test, err := LoadDirOptions(dir, Options{Classes: 12}); err != nil || train.Classes != 12 || test.Classes != 12 {
		t.Errorf("classes: %v", err)
	}
	// A test folder whose images are 4096×8192 (a 32 KB bomb) is found
	// wrong before the training images are read.
	write(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), gzipZeros(idxHeader(idxImageMagic, 1, 4096, 8192), 4096*8192))
	write(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), gz(idxBytes(idxLabelMagic, []uint32{1}, []byte{0})))
	var err error
	if got := allocated(func() { _, _, err = LoadDirOptions(dir, Options{}) }); got > headerOnly {
		t.Errorf("allocated %d bytes before failing on the headers", got)
	}
	if err == nil || !strings.Contains(err.Error(), "training images have 6 features but test images have 33554432") {
		t.Errorf("mismatch: %v", err)
	}
}

func TestPeekFeatures(t *testing.T) {
	dir := t.TempDir()
	bomb := write(t, filepath.Join(dir, "bomb.gz"), gzipZeros(idxHeader(idxImageMagic, 1, 4096, 8192), 4096*8192))
	x := write(t, filepath.Join(dir, "x.npy"), npyOf(t, []int{2, 3}, make([]float32, 6)))
	st := write(t, filepath.Join(dir, "x.safetensors"), stBytes(stTensor{"features", "F32", []int{1, 5}, make([]byte, 20)}))
	c := write(t, filepath.Join(dir, "c.csv"), []byte("\nlabel,a,b,c\n1,2,3,4\n"))
	for _, tc := range []struct {
		path string
		o    Options
		want int
	}{{bomb, Options{}, 4096 * 8192}, {x, Options{}, 3}, {st, Options{}, 5}, {c, Options{}, 3}, {c, Options{Unlabelled: true}, 0}} {
		var n int
		var err error
		if got := allocated(func() { n, err = PeekFeatures(tc.path, tc.o) }); got > headerOnly {
			t.Errorf("%s: allocated %d bytes", tc.path, got)
		}
		if err != nil || n != tc.want {
			t.Errorf("PeekFeatures(%s, %+v) = %d, %v; want %d", filepath.Base(tc.path), tc.o, n, err, tc.want)
		}
	}
	if _, err := PeekFeatures(st, Options{FeaturesTensor: "nope"}); err == nil || !strings.Contains(err.Error(), `no tensor "nope"`) {
		t.Errorf("missing tensor: %v", err)
	}
}

// A CSV field of 64 MiB (64 KB gzipped) fails as soon as it passes
// maxCSVField bytes, with a short error, whether the columns are counted
// first (Features given) or not.
func TestCSVLongField(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte("1,"))
	ones := bytes.Repeat([]byte("1"), 1<<20)
	for range 64 {
		w.Write(ones)
	}
	w.Write([]byte(",3\n1,2,3\n"))
	w.Close()
	p := write(t, filepath.Join(dir, "long.csv.gz"), buf.Bytes())
	for _, o := range []Options{{}, {Features: 2}, {Unlabelled: true, Features: 2}} {
		var err error
		got := allocated(func() { _, err = LoadFile(p, o) })
		if err == nil || !strings.Contains(err.Error(), p+":1: column 2: field \"1111") || !strings.Contains(err.Error(), "longer than 4096 bytes") {
			t.Errorf("%+v: error %.300v", o, err)
		}
		if err != nil && len(err.Error()) > 300 {
			t.Errorf("%+v: error of %d bytes", o, len(err.Error()))
		}
		if got > headerOnly {
			t.Errorf("%+v: allocated %d bytes for a 64 MiB field", o, got)
		}
	}
	// A long line of short fields is data, read whole.
	long := bytes.Repeat([]byte(",1"), 1<<20)
	q := write(t, filepath.Join(dir, "wide.csv"), append(append([]byte("0"), long...), '\n'))
	if s, err := LoadFile(q, Options{}); err != nil || s.N != 1<<20 {
		t.Errorf("a 2 MiB line of 1M features: %v", err)
	}
}

// The first row is a header only when one of its fields is not a number:
// a byte order mark is dropped, a label written 1.0 is label 1, and every
// line is counted as read or skipped.
func TestCSVHeaderRule(t *testing.T) {
	for _, c := range []struct {
		name, text string
		rows       int
		y0         int32
		skipped    []Skipped
	}{
		{"BOM", bom + "1,2,3\n0,4,5\n", 2, 1, nil},
		{"BOM and header", bom + "label,a,b\n1,2,3\n", 1, 1, []Skipped{{1, "header line"}}},
		{"label 1.0", "1.0,2,3\n0,4,5\n", 2, 1, nil},
		{"label 2e0 and 0.0", "2e0,2,3\n0.0,4,5\n", 2, 2, nil},
		{"header in a later field", "1,2,x\n0,4,5\n", 1, 0, []Skipped{{1, "header line"}}},
		{"pandas index header", ",a,b\n1,2,3\n", 1, 1, []Skipped{{1, "header line"}}},
		{"blanks around", "\n\nlabel,a\n\n1,2\n\n0,3", 2, 1, []Skipped{{1, "header line"}, {4, "blank lines"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, filepath.Join(t.TempDir(), "d.csv"), []byte(c.text))
			s, err := LoadFile(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != c.rows || s.Y[0] != c.y0 || s.Stats.RowsRead != c.rows {
				t.Errorf("rows %d (stats %d), first label %d; want %d rows, label %d", s.Rows, s.Stats.RowsRead, s.Y[0], c.rows, c.y0)
			}
			if len(s.Stats.Skipped) != len(c.skipped) {
				t.Fatalf("skipped %+v, want %+v", s.Stats.Skipped, c.skipped)
			}
			lines := s.Stats.RowsRead
			for i, sk := range s.Stats.Skipped {
				lines += sk.Rows
				if sk != c.skipped[i] {
					t.Errorf("skipped %+v, want %+v", s.Stats.Skipped, c.skipped)
				}
			}
			text := strings.TrimSuffix(c.text, "\n")
			if want := strings.Count(text, "\n") + 1; lines != want {
				t.Errorf("%d lines accounted for (read + skipped), the file has %d", lines, want)
			}
		})
	}
	for _, c := range []struct{ text, want string }{
		{"1.5,2,3\n0,4,5\n", `:1: column 1: label "1.5" is not an integer`},
		{"1,2,3\n0.5,4,5\n", `:2: column 1: label "0.5" is not an integer`},
		{"-1.0,2,3\n", `:1: column 1: negative label "-1.0"`},
		{"1,2,3\n" + strings.Repeat("9", 100) + ",4,5\n", `:2: column 1: label "99999999999999999999999999999999"… (100 bytes) is too large`},
		{"1,2,3\nx" + strings.Repeat("y", 10000) + ",4,5\n", `:2: column 1: label "xyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"… (10001 bytes) is not a number`},
		{"1,2,3\n1,2," + strings.Repeat("z", 500<<10) + "\n", `:2: column 3: value "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"… (512000 bytes) is not a number`},
		{"1,2,3\n1,2," + strings.Repeat("z", 10<<20) + "\n", `:2: column 3: field "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"… is longer than 4096 bytes`},
		{"1,2,3\n1,2," + strings.Repeat("8", 3000) + "\n", `:2: column 3: value "88888888888888888888888888888888"… (3000 bytes) out of float32 range`},
	} {
		p := write(t, filepath.Join(t.TempDir(), "bad.csv"), []byte(c.text))
		_, err := LoadFile(p, Options{})
		if err == nil || !strings.Contains(err.Error(), p+c.want) || len(err.Error()) > 300 {
			t.Errorf("error %.300v\nwant %s", err, c.want)
		}
	}
}

// Finite values near ±3.4e38 whose distance from the mean overflows
// float32 are rejected when the scaler is fitted, naming the row and the
// feature; applying a scaler to a value that overflows says where too.
func TestScalerExtremeValues(t *testing.T) {
	const big = 3.4e38
	s := &Set{X: []float32{big, 1, big, 2, -big, 3}, Rows: 3, N: 2, Source: "x.csv"}
	if _, err := FitScaler(s); err == nil || !strings.Contains(err.Error(), "x.csv: row 2, feature 0 (both 0-based): value -3.4e+38 cannot be standardised") {
		t.Errorf("fit: %v", err)
	}
	// Extreme but scalable: the outlier's distance from the mean fits.
	ok := &Set{X: []float32{big, 1, 0, 2, -big, 3}, Rows: 3, N: 2, Source: "ok.csv"}
	sc, err := FitScaler(ok)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Apply(ok); err != nil {
		t.Fatal(err)
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("scaled set: %v", err)
	}
	// Test data far outside: (3.4e38 − 0) / 0.5 is +Inf in float32.
	sc = &Scaler{Mean: []float32{0, 0}, Std: []float32{1, 0.5}}
	test := &Set{X: []float32{1, 1, 3, big}, Rows: 2, N: 2, Source: "test.csv"}
	if err := sc.Apply(test); err == nil || !strings.Contains(err.Error(), "test.csv: row 1, feature 1 (both 0-based): value 3.4e+38 scales to +Inf") {
		t.Errorf("apply: %v", err)
	}
}
