package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes builds an IDX file: magic, big-endian dimensions, payload.
func idxBytes(magic uint32, dims []uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func write(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sample returns count images of rows×cols pixels and their labels.
func sample(count, rows, cols int) (pix, labels []byte) {
	pix = make([]byte, count*rows*cols)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	labels = make([]byte, count)
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	return pix, labels
}

func TestLoadIDXRoundTrip(t *testing.T) {
	pix, labels := sample(12, 3, 2)
	imgs := idxBytes(idxImageMagic, []uint32{12, 3, 2}, pix)
	labs := idxBytes(idxLabelMagic, []uint32{12}, labels)
	for _, tc := range []struct {
		name         string
		gzImg, gzLab bool
	}{{"plain", false, false}, {"gzip", true, true}, {"mixed", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ib, lb := imgs, labs
			if tc.gzImg {
				ib = gz(ib)
			}
			if tc.gzLab {
				lb = gz(lb)
			}
			// Names carry no .gz: compression is detected from content.
			s, err := LoadIDX(write(t, filepath.Join(dir, "img"), ib), write(t, filepath.Join(dir, "lab"), lb))
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != 12 || s.N != 6 || s.Classes != 10 || len(s.X) != 72 || len(s.Y) != 12 {
				t.Fatalf("got Rows=%d N=%d Classes=%d len(X)=%d len(Y)=%d", s.Rows, s.N, s.Classes, len(s.X), len(s.Y))
			}
			for i, p := range pix {
				if s.X[i] != float32(p) {
					t.Fatalf("X[%d] = %v, want %v", i, s.X[i], p)
				}
			}
			for i, l := range labels {
				if s.Y[i] != int32(l) {
					t.Fatalf("Y[%d] = %d, want %d", i, s.Y[i], l)
				}
			}
		})
	}
}

func TestLoadIDXClassesAboveTen(t *testing.T) {
	dir := t.TempDir()
	pix, _ := sample(3, 1, 1)
	s, err := LoadIDX(
		write(t, filepath.Join(dir, "i"), idxBytes(idxImageMagic, []uint32{3, 1, 1}, pix)),
		write(t, filepath.Join(dir, "l"), idxBytes(idxLabelMagic, []uint32{3}, []byte{0, 14, 2})))
	if err != nil {
		t.Fatal(err)
	}
	if s.Classes != 15 {
		t.Errorf("Classes = %d, want 15", s.Classes)
	}
}

func TestLoadIDXErrors(t *testing.T) {
	pix, labels := sample(3, 2, 2)
	goodImg := idxBytes(idxImageMagic, []uint32{3, 2, 2}, pix)
	goodLab := idxBytes(idxLabelMagic, []uint32{3}, labels)
	zgood := gz(goodImg)
	corrupt := append([]byte(nil), zgood...)
	corrupt[len(corrupt)-8] ^= 0xff // CRC-32 of the content
	for _, tc := range []struct {
		name     string
		img, lab []byte
		bad      string // which file the error must name: "img" or "lab"
		want     string
	}{
		{"image magic", idxBytes(0x00000801, []uint32{3, 2, 2}, pix), goodLab, "img", "not an IDX image file (magic 0x00000801"},
		{"label magic", goodImg, idxBytes(0x00000803, []uint32{3}, labels), "lab", "not an IDX label file (magic 0x00000803"},
		{"truncated images", goodImg[:16+5], goodLab, "img", "truncated: header says 3 images of 2×2 (12 bytes) but only 5 bytes follow"},
		{"truncated labels", goodImg, goodLab[:9], "lab", "truncated: header says 3 labels (3 bytes) but only 1 bytes follow"},
		{"truncated header", goodImg[:10], goodLab, "img", "truncated: IDX header needs 16 bytes"},
		{"empty file", nil, goodLab, "img", "truncated"},
		{"trailing data", append(append([]byte(nil), goodImg...), 1, 2), goodLab, "img", "unexpected data at byte offset 28"},
		{"count mismatch", goodImg, idxBytes(idxLabelMagic, []uint32{2}, labels[:2]), "lab", "count mismatch"},
		{"zero images", idxBytes(idxImageMagic, []uint32{0, 2, 2}, nil), idxBytes(idxLabelMagic, []uint32{0}, nil), "img", "empty set"},
		{"zero pixels", idxBytes(idxImageMagic, []uint32{3, 0, 2}, nil), goodLab, "img", "no features"},
		{"gzip truncated", zgood[:len(zgood)/2], goodLab, "img", "gzip data"},
		{"gzip corrupt", corrupt, goodLab, "img", "gzip data"},
		{"gzip bad header", []byte{0x1f, 0x8b, 0, 0, 0, 0}, goodLab, "img", "gzip data"},
		{"huge header", idxBytes(idxImageMagic, []uint32{1 << 31, 1 << 31, 4}, pix), goodLab, "img", "implausible IDX dimensions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img := write(t, filepath.Join(dir, "images.idx"), tc.img)
			lab := write(t, filepath.Join(dir, "labels.idx"), tc.lab)
			_, err := LoadIDX(img, lab)
			if err == nil {
				t.Fatal("no error")
			}
			file := img
			if tc.bad == "lab" {
				file = lab
			}
			if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to name %s and contain %q", msg, file, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope")
		_, err := LoadIDX(p, p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v does not name %s", err, p)
		}
	})
}

func writeDir(t *testing.T, dir string, gzipped bool, skip ...string) {
	t.Helper()
	pix, labels := sample(7, 2, 3)
	files := map[string][]byte{
		"train-images-idx3-ubyte": idxBytes(idxImageMagic, []uint32{5, 2, 3}, pix[:30]),
		"train-labels-idx1-ubyte": idxBytes(idxLabelMagic, []uint32{5}, labels[:5]),
		"t10k-images-idx3-ubyte":  idxBytes(idxImageMagic, []uint32{2, 2, 3}, pix[30:]),
		"t10k-labels-idx1-ubyte":  idxBytes(idxLabelMagic, []uint32{2}, labels[5:]),
	}
	for name, b := range files {
		if strings.Contains(strings.Join(skip, " "), name) {
			continue
		}
		if gzipped {
			name, b = name+".gz", gz(b)
		}
		write(t, filepath.Join(dir, name), b)
	}
}

func TestLoadDir(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := t.TempDir()
		writeDir(t, dir, gzipped)
		train, test, err := LoadDir(dir)
		if err != nil {
			t.Fatalf("gzip=%v: %v", gzipped, err)
		}
		if train.Rows != 5 || test.Rows != 2 || train.N != 6 || test.N != 6 || train.Classes != 10 {
			t.Errorf("gzip=%v: train %d×%d, test %d×%d, classes %d", gzipped, train.Rows, train.N, test.Rows, test.N, train.Classes)
		}
		if test.Y[0] != 5 || test.X[0] != float32(byte(30*7)) {
			t.Errorf("gzip=%v: test set starts with label %d pixel %v", gzipped, test.Y[0], test.X[0])
		}
	}
}

func TestLoadDirErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		skip []string
		want []string
	}{
		{"one missing", []string{"t10k-labels-idx1-ubyte"}, []string{"missing t10k-labels-idx1-ubyte[.gz]"}},
		{"two missing", []string{"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"},
			[]string{"train-images-idx3-ubyte[.gz]", "t10k-images-idx3-ubyte[.gz]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDir(t, dir, false, tc.skip...)
			_, _, err := LoadDir(dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tc.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("empty dir lists all four", func(t *testing.T) {
		dir := t.TempDir()
		_, _, err := LoadDir(dir)
		if err == nil || strings.Count(err.Error(), "[.gz]") != 4 {
			t.Errorf("error %v should list four missing files", err)
		}
	})
	t.Run("not a dir", func(t *testing.T) {
		p := write(t, filepath.Join(t.TempDir(), "f"), []byte("x"))
		if _, _, err := LoadDir(p); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("got %v", err)
		}
	})
}

func TestLoadCSV(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		gzip    bool
		classes int
		rows, n int
		wantCls int
		x       []float32
		y       []int32
	}{
		{"plain", "1,0.5,2\n0,-1,3e2\n", false, 0, 2, 2, 2, []float32{0.5, 2, -1, 300}, []int32{1, 0}},
		{"header", "label,a,b\n2,1,2\n0,3,4\n", false, 0, 2, 2, 3, []float32{1, 2, 3, 4}, []int32{2, 0}},
		{"crlf, blanks, spaces, no final newline", "\r\n1, 1 ,2\r\n\r\n0,3,4", false, 0, 2, 2, 2, []float32{1, 2, 3, 4}, []int32{1, 0}},
		{"given classes", "1,1\n", false, 10, 1, 1, 10, []float32{1}, []int32{1}},
		{"gzip", "3,1\n1,2\n", true, 0, 2, 1, 4, []float32{1, 2}, []int32{3, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.text)
			if tc.gzip {
				b = gz(b)
			}
			p := write(t, filepath.Join(t.TempDir(), "d.csv"), b)
			s, err := LoadCSV(p, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != tc.rows || s.N != tc.n || s.Classes != tc.wantCls {
				t.Fatalf("Rows=%d N=%d Classes=%d, want %d %d %d", s.Rows, s.N, s.Classes, tc.rows, tc.n, tc.wantCls)
			}
			for i := range tc.x {
				if s.X[i] != tc.x[i] {
					t.Errorf("X = %v, want %v", s.X, tc.x)
					break
				}
			}
			for i := range tc.y {
				if s.Y[i] != tc.y[i] {
					t.Errorf("Y = %v, want %v", s.Y, tc.y)
					break
				}
			}
			if err := s.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		classes int
		want    string // after "file:"
	}{
		{"too few columns", "h,a,b\n1,2,3\n1,2\n", 0, "3: wrong number of columns: 2, want 3"},
		{"too many columns", "1,2,3\n1,2,3,4\n", 0, "2: wrong number of columns: 4, want 3"},
		{"non-numeric", "1,2,3\n0,2,x7\n", 0, "2: column 3: value \"x7\" is not a number"},
		{"empty field", "1,,3\n", 0, "1: column 2: value \"\" is not a number"},
		{"NaN", "1,2,3\n1,NaN,3\n", 0, "2: column 2: value \"NaN\" is NaN or infinite"},
		{"Inf", "1,2,-Inf\n", 0, "1: column 3: value \"-Inf\" is NaN or infinite"},
		{"overflow", "1,2,1e99\n", 0, "1: column 3: value \"1e99\" out of float32 range"},
		{"negative label", "1,2\n-3,2\n", 0, "2: column 1: negative label -3"},
		{"fractional label", "1,2\n1.5,2\n", 0, "2: column 1: label \"1.5\" is not an integer"},
		{"label over classes", "1,2\n9,2\n", 5, "2: column 1: label 9 out of range [0, 5)"},
		{"no features", "1\n", 0, "1: no features"},
		{"header only", "label,a\n", 0, " empty set"},
		{"empty file", "", 0, " empty set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, filepath.Join(t.TempDir(), "bad.csv"), []byte(tc.text))
			_, err := LoadCSV(p, tc.classes)
			if err == nil {
				t.Fatal("no error")
			}
			if want := p + ":" + tc.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	csv := write(t, filepath.Join(dir, "a.data"), gz([]byte("1,2\n0,3\n")))
	s, err := Load(csv)
	if err != nil || s.Rows != 2 || s.Classes != 2 {
		t.Fatalf("Load CSV: %v %+v", err, s)
	}
	idx := write(t, filepath.Join(dir, "i"), gz(idxBytes(idxImageMagic, []uint32{1, 1, 1}, []byte{1})))
	for _, tc := range []struct{ path, want string }{
		{idx, "use LoadIDX"},
		{dir, "use LoadDir"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		if _, err := Load(tc.path); err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s) = %v, want error naming the file and %q", tc.path, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	good := func() *Set {
		return &Set{X: []float32{1, 2, 3, 4, 5, 6}, Y: []int32{0, 1}, Rows: 2, N: 3, Classes: 2, Source: "f.csv"}
	}
	for _, tc := range []struct {
		name string
		edit func(s *Set)
		want string
	}{
		{"ok", func(s *Set) {}, ""},
		{"NaN", func(s *Set) { s.X[4] = nan }, "f.csv: row 1, column 1: feature is NaN"},
		{"Inf", func(s *Set) { s.X[2] = inf }, "f.csv: row 0, column 2: feature is +Inf"},
		{"label high", func(s *Set) { s.Y[1] = 2 }, "f.csv: row 1: label 2 out of range [0, 2)"},
		{"label negative", func(s *Set) { s.Y[0] = -1 }, "row 0: label -1 out of range"},
		{"len X", func(s *Set) { s.X = s.X[:5] }, "2 rows × 3 features does not match 5 feature values"},
		{"len Y", func(s *Set) { s.Y = s.Y[:1] }, "2 rows but 1 labels"},
		{"empty", func(s *Set) { s.Rows, s.X, s.Y = 0, nil, nil }, "empty set"},
		{"no classes", func(s *Set) { s.Classes = 0 }, "0 classes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.edit(s)
			err := s.Validate()
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

func TestScaler(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, n = 500, 4
	s := &Set{X: make([]float32, rows*n), Y: make([]int32, rows), Rows: rows, N: n, Classes: 1}
	for r := 0; r < rows; r++ {
		s.X[r*n+0] = float32(rng.NormFloat64()*30 + 100)
		s.X[r*n+1] = 7 // constant column
		s.X[r*n+2] = float32(rng.Float64() * 255)
		s.X[r*n+3] = 0 // constant zero, like a border pixel
	}
	sc, err := FitScaler(s)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Std[1] != 1 || sc.Std[3] != 1 {
		t.Errorf("constant columns: Std = %v, want 1", sc.Std)
	}
	if err := sc.Apply(s); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < n; j++ {
		var sum, sq float64
		for r := 0; r < rows; r++ {
			v := float64(s.X[r*n+j])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("column %d row %d: %v", j, r, v)
			}
			sum += v
			sq += v * v
		}
		mean := sum / rows
		std := math.Sqrt(sq/rows - mean*mean)
		if math.Abs(mean) > 1e-4 {
			t.Errorf("column %d: mean %g after scaling, want 0", j, mean)
		}
		wantStd := 1.0
		if j == 1 || j == 3 {
			wantStd = 0
		}
		if math.Abs(std-wantStd) > 1e-3 {
			t.Errorf("column %d: std %g after scaling, want %g", j, std, wantStd)
		}
	}
	if err := sc.Apply(&Set{N: 3, Source: "other.csv"}); err == nil || !strings.Contains(err.Error(), "other.csv") {
		t.Errorf("N mismatch: got %v", err)
	}
	if e, err := FitScaler(&Set{N: 2}); err != nil || e.Std[0] != 1 || e.Mean[0] != 0 {
		t.Errorf("empty set scaler %+v, want identity", e)
	}
}

func TestShuffleBatch(t *testing.T) {
	s := &Set{X: []float32{0, 1, 10, 11, 20, 21, 30, 31}, Y: []int32{0, 1, 2, 3}, Rows: 4, N: 2, Classes: 4}
	perm := s.Shuffle(rand.New(rand.NewPCG(3, 4)))
	seen := map[int]bool{}
	for _, p := range perm {
		seen[p] = true
	}
	if len(perm) != 4 || len(seen) != 4 {
		t.Fatalf("Shuffle = %v, not a permutation of 0..3", perm)
	}
	x := make([]float32, 6)
	y := make([]int32, 3)
	s.Batch([]int{3, 0, 2}, x, y)
	wantX := []float32{30, 31, 0, 1, 20, 21}
	wantY := []int32{3, 0, 2}
	for i := range wantX {
		if x[i] != wantX[i] {
			t.Fatalf("x = %v, want %v", x, wantX)
		}
	}
	for i := range wantY {
		if y[i] != wantY[i] {
			t.Fatalf("y = %v, want %v", y, wantY)
		}
	}
	if a := testing.AllocsPerRun(100, func() { s.Batch([]int{1, 2}, x, y) }); a != 0 {
		t.Errorf("Batch allocates %v times", a)
	}
}

// TestFashionMNIST loads the real data set where Debian's
// dataset-fashion-mnist package installs it.
func TestFashionMNIST(t *testing.T) {
	var dir string
	for _, d := range DefaultDirs() {
		if _, err := os.Stat(filepath.Join(d, "train-images-idx3-ubyte.gz")); err == nil {
			dir = d
			break
		}
		if _, err := os.Stat(filepath.Join(d, "train-images-idx3-ubyte")); err == nil {
			dir = d
			break
		}
	}
	if dir == "" {
		t.Skipf("Fashion-MNIST not found in %v (install Debian package dataset-fashion-mnist)", DefaultDirs())
	}
	train, test, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Rows != 60000 || test.Rows != 10000 || train.N != 784 || test.N != 784 || train.Classes != 10 || test.Classes != 10 {
		t.Fatalf("%s: train %d×%d (%d classes), test %d×%d (%d classes)", dir,
			train.Rows, train.N, train.Classes, test.Rows, test.N, test.Classes)
	}
	counts := make([]int, 10)
	for _, y := range train.Y {
		counts[y]++
	}
	for c, n := range counts {
		if n != 6000 {
			t.Errorf("class %d has %d training rows, want 6000", c, n)
		}
	}
}
