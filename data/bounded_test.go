package data

import (
	"bytes"
	"compress/gzip"
	"path/filepath"
	"strings"
	"testing"
)

// TestCSVWideFirstLine: a first line of millions of short fields costs
// memory of the order of the line, not of a split into millions of
// strings: the header rule looks at the fields one by one and stops at
// the first word, and the column count is a count. (The 61 KB
// gzip of a 60-million-field first line took 2.4 GB and 22 s; here 6
// million fields, 12 MB of text, must take under 4 times that.)
func TestCSVWideFirstLine(t *testing.T) {
	const fields = 6 << 20
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte("1,1,x"))
	w.Write(bytes.Repeat([]byte(",1"), fields-3))
	w.Write([]byte("\n0,1,2\n1,2,3\n"))
	w.Close()
	p := write(t, filepath.Join(t.TempDir(), "wide.csv.gz"), buf.Bytes())
	line := 2 * fields
	for _, c := range []struct {
		o    Options
		want string // "" : loads
	}{
		{Options{}, ""}, // a header (field 3 is a word), then two rows of 2 features
		{Options{Features: 2}, "rows have 6291456 columns: want a label and 2 features"},
		{Options{Features: 2, Unlabelled: true}, "rows have 6291456 columns"},
	} {
		var err error
		var s *Set
		got := allocated(func() { s, err = LoadFile(p, c.o) })
		switch {
		case c.want == "" && (err != nil || s.Rows != 2 || s.N != 2 || s.Stats.Skipped[0].Reason != "header line"):
			t.Errorf("%+v: %v; want the header skipped and 2 rows read", c.o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v; want %q", c.o, err, c.want)
		}
		if got > uint64(4*line) {
			t.Errorf("%+v: allocated %d MB for a %d MB line", c.o, got>>20, line>>20)
		}
	}
	n, err := PeekFeatures(p, Options{})
	if err != nil || n != fields-1 {
		t.Errorf("PeekFeatures = %d, %v", n, err)
	}
}
