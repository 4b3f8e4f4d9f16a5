package data

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func idxSeeds() map[string][]byte {
	pix, labels := sample(3, 2, 2)
	img := idxBytes(idxImageMagic, []uint32{3, 2, 2}, pix)
	return map[string][]byte{
		"images":          img,
		"images-gz":       gz(img),
		"labels":          idxBytes(idxLabelMagic, []uint32{3}, labels),
		"one-pixel":       idxBytes(idxImageMagic, []uint32{1, 1, 1}, []byte{255}),
		"truncated":       img[:20],
		"trailing":        append(append([]byte(nil), img...), 9),
		"zero-images":     idxBytes(idxImageMagic, []uint32{0, 2, 2}, nil),
		"bomb-header":     idxBytes(idxImageMagic, []uint32{1, 32768, 32768}, pix),
		"bomb-header-gz":  gz(idxBytes(idxImageMagic, []uint32{1, 32768, 32768}, pix)),
		"bomb-gz-1mib":    gzipZeros(idxHeader(idxImageMagic, 1, 1024, 1024), 1024*1024),
		"bomb-count":      idxBytes(idxImageMagic, []uint32{1 << 31, 1 << 31, 4}, pix),
		"features-784":    gzipZeros(idxHeader(idxImageMagic, 3, 28, 28), 3*784),
		"labels-too-many": idxBytes(idxLabelMagic, []uint32{4}, []byte{0, 1, 2, 3}),
	}
}

func csvSeeds() map[string][]byte {
	long := strings.Repeat("7", 5000)
	return map[string][]byte{
		"labelled":        []byte("1,0.5,2\n0,-1,3e2\n2,4,5\n"),
		"header":          []byte("label,a,b\n2,1,2\n0,3,4\n"),
		"features-only":   []byte("a,b,c\n0.5,2,1\n1,1,1\n"),
		"bom":             []byte(bom + "1,2,3\n0,4,5\n"),
		"label-1.0":       []byte("1.0,2,3\n0,4,5\n"),
		"label-1.5":       []byte("1.5,2,3\n"),
		"crlf-blanks":     []byte("\r\n1, 1 ,2\r\n\r\n0,3,4"),
		"nan-inf":         []byte("1,NaN,3\n0,-Inf,1e99\n"),
		"pandas-index":    []byte(",a,b\n1,2,3\n"),
		"long-field":      []byte("1," + long + ",3\n"),
		"long-label":      []byte("1,2\n" + long + ",3\n"),
		"long-field-gz":   gz([]byte("1," + strings.Repeat("1", 2<<20) + ",3\n")),
		"wide-line-gz":    gz([]byte("0" + strings.Repeat(",1", 600000) + "\n")),
		"gzip":            gz([]byte("3,1\n1,2\n")),
		"big-label":       []byte("1000000,1\n0,2\n"),
		"ragged":          []byte("1,2,3\n1,2\n"),
		"only-header":     []byte("label,a\n"),
		"commas":          []byte(",,,\n,,,\n"),
		"huge-exponent":   []byte("1,1e-400,1e38\n0,3.4e38,-3.4e38\n"),
		"negative-labels": []byte("-1,2\n-0,3\n"),
	}
}

// decompressed is the size of b after gunzipping when it is gzip data
// (at most limit bytes are counted), else len(b): what the loaders may
// really hold in memory.
func decompressed(b []byte, limit int64) int {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return len(b)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return len(b)
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, limit))
	return max(len(b), int(n))
}

// fuzzLoad runs a load for a fuzzer and checks what every load promises
// however bad the input: no panic (the fuzzer reports one), an error that
// names the file and is short, and allocation bounded by what the files
// hold (k bytes, gunzipped, with other bytes of the other files read)
// whatever their headers claim: 16·k plus the readers' buffers.
func fuzzLoad(t *testing.T, p string, b []byte, other int, load func() (*Set, error)) *Set {
	t.Helper()
	holds := decompressed(b, 64<<20) + other
	var s *Set
	var err error
	got := allocated(func() { s, err = load() })
	if limit := uint64(16*holds) + headerOnly; got > limit {
		t.Fatalf("allocated %d bytes for a file of %d bytes (%d gunzipped), want at most %d", got, len(b), holds, limit)
	}
	if err != nil {
		checkFuzzError(t, p, err)
		return nil
	}
	checkLoaded(t, s, holds)
	return s
}

// checkFuzzError checks that an error names the file p and, p aside, is
// under 250 bytes on one line (with a path of 50 bytes, under 300).
func checkFuzzError(t *testing.T, p string, err error) {
	t.Helper()
	msg := err.Error()
	if rest := strings.ReplaceAll(msg, p, "F"); !strings.Contains(msg, p) || len(rest) >= 250 || strings.ContainsAny(msg, "\n\x00") {
		t.Fatalf("error of %d bytes (%d without the file name) not naming %s, or of several lines: %.400q", len(msg), len(rest), p, msg)
	}
}

func FuzzIDX(f *testing.F) {
	dir := f.TempDir()
	pix, labels := sample(3, 2, 2)
	img3 := write(f, filepath.Join(dir, "img3"), idxBytes(idxImageMagic, []uint32{3, 2, 2}, pix))
	lab3 := write(f, filepath.Join(dir, "lab3"), idxBytes(idxLabelMagic, []uint32{3}, labels))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.idx")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		// As images alone, with a model's feature count, with labels; as
		// the labels of three images.
		for _, o := range []Options{{Unlabelled: true}, {Unlabelled: true, Features: 784}, {Labels: lab3}} {
			s := fuzzLoad(t, p, b, len(labels)+8, func() (*Set, error) { return LoadFile(p, o) })
			if s != nil && o.Features > 0 && s.N != o.Features {
				t.Fatalf("%d features loaded, want %d", s.N, o.Features)
			}
		}
		if s := fuzzLoad(t, p, b, len(pix)+16, func() (*Set, error) { return LoadIDX(img3, p) }); s != nil && len(s.Y) != 3 {
			t.Fatalf("%d labels for 3 images", len(s.Y))
		}
	})
}

func FuzzCSV(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.csv")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, o := range []Options{{}, {Unlabelled: true, Features: 2}, {Features: 2}, {Classes: 3}} {
			s := fuzzLoad(t, p, b, 0, func() (*Set, error) { return LoadFile(p, o) })
			if s == nil {
				continue
			}
			// Every line is read or skipped, none more than once.
			lines := s.Stats.RowsRead
			for _, sk := range s.Stats.Skipped {
				lines += sk.Rows
			}
			if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
				continue // gzip: the lines are inside
			}
			if want := bytes.Count(b, []byte("\n")) + 1; lines > want || lines < want-1 {
				t.Fatalf("%d lines read or skipped, the file has %d or %d", lines, want-1, want)
			}
			if o.Classes > 0 && s.Classes != 3 {
				t.Fatalf("%d classes, want 3", s.Classes)
			}
		}
	})
}
