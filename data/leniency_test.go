package data

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestStrictNumbers: what numpy and CSV writers do not write is not read
// as if they had: .npy format 1.1, dtypes '<f04' and '<f+4', CSV fields
// with digit separators (1_000) or in hexadecimal (0x1p-2), and a label
// 2.9999999999999999 that float64 rounds to 3. Labels written 3.0, 3e0
// and 30e-1 are still class 3.
func TestStrictNumbers(t *testing.T) {
	dir := t.TempDir()
	x := f32le(1, 2)
	v11 := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", x)
	v11[7] = 1 // version 1.1
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"npy 1.1":     {v11, "unsupported .npy format version 1.1"},
		"npy f04":     {npyBytes("{'descr': '<f04', 'fortran_order': False, 'shape': (1, 2), }", x), `unsupported dtype "<f04"`},
		"npy f+4":     {npyBytes("{'descr': '<f+4', 'fortran_order': False, 'shape': (1, 2), }", x), `unsupported dtype "<f+4"`},
		"npy f4 ":     {npyBytes("{'descr': '<f4 ', 'fortran_order': False, 'shape': (1, 2), }", x), `unsupported dtype "<f4 "`},
		"csv 1_000":   {[]byte("0,1\n1,1_000\n"), `:2: column 2: value "1_000" is not a number`},
		"csv hex":     {[]byte("0,1\n1,0x1p-2\n"), `:2: column 2: value "0x1p-2" is not a number`},
		"csv 1_0.5":   {[]byte("0,1\n1,1_0.5\n"), `value "1_0.5" is not a number`},
		"label 1_0":   {[]byte("0,1\n1_0,1\n"), `:2: column 1: label "1_0" is not a number`},
		"label hex":   {[]byte("0,1\n0x1p1,1\n"), `label "0x1p1" is not a number`},
		"label 2.9":   {[]byte("0,1\n2.9999999999999999,1\n"), `:2: column 1: label "2.9999999999999999" is not an integer`},
		"label 25e-1": {[]byte("0,1\n25e-1,1\n"), `label "25e-1" is not an integer`},
	} {
		p := write(t, filepath.Join(dir, strings.ReplaceAll(name, " ", "_")), c.b)
		_, err := LoadFile(p, Options{Unlabelled: true})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", name, err, c.want)
		}
	}
	p := write(t, filepath.Join(dir, "ok.csv"), []byte("3,1\n3.0,1\n3e0,2\n30e-1,3\n+3,4\n0.0,5\n1e1,6\n"))
	s, err := LoadFile(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int32{3, 3, 3, 3, 3, 0, 10} {
		if s.Y[i] != want {
			t.Errorf("row %d: label %d, want %d", i, s.Y[i], want)
		}
	}
}
