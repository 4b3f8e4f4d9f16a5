package data

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stRaw is a safetensors file of a raw JSON header and data.
func stRaw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// hostileHeaders are data files whose headers hold long or odd values,
// each of which once gave an error quoting it whole (a 1 MB tensor name, a
// 200 KB number, a shape of thousands of dimensions, names with a newline
// or a NUL).
func hostileHeaders() map[string][]byte {
	huge := strings.Repeat("n", 1<<20)
	digits := strings.Repeat("7", 200000)
	ones := func(k int) string { return strings.TrimSuffix(strings.Repeat("1,", k), ",") }
	x4 := f32le(1, 2, 3, 4)
	var manyHdr strings.Builder
	manyHdr.WriteString("{")
	for i := range 2000 {
		fmt.Fprintf(&manyHdr, `"tensor-%05d-%s":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},`, i, strings.Repeat("q", 100))
	}
	manyHdr.WriteString(`"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`)
	return map[string][]byte{
		"st-1MB-name":        stRaw(`{"`+huge+`":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, x4[:4]),
		"st-1MB-name-bad":    stRaw(`{"`+huge+`":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, x4[:4]),
		"st-newline-name":    stRaw(`{"a\nb\u0000c":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, x4[:4]),
		"st-shape-digits":    stRaw(`{"x":{"dtype":"F32","shape":[`+digits+`],"data_offsets":[0,4]}}`, x4[:4]),
		"st-offset-digits":   stRaw(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,`+digits+`]}}`, x4[:4]),
		"st-unknown-field":   stRaw(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"`+strings.Repeat("f", 200000)+`":1}}`, x4[:4]),
		"st-64-dims":         stRaw(`{"features":{"dtype":"F32","shape":[`+strings.TrimSuffix(strings.Repeat("18446744073,", 64), ",")+`],"data_offsets":[0,4]}}`, x4[:4]),
		"st-65-dims":         stRaw(`{"features":{"dtype":"F32","shape":[`+ones(65)+`],"data_offsets":[0,4]}}`, x4[:4]),
		"st-2000-names":      stRaw(manyHdr.String(), x4[:4]),
		"st-long-dtype":      stRaw(`{"x":{"dtype":"`+huge+`","shape":[1],"data_offsets":[0,4]}}`, x4[:4]),
		"st-long-meta":       stRaw(`{"__metadata__":{"k":`+digits+`},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, x4[:4]),
		"npy-5000-dims":      npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': ("+ones(5000)+"), }", x4),
		"npy-64-dims":        npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': ("+strings.TrimSuffix(strings.Repeat("3, ", 64), ", ")+"), }", x4),
		"npy-long-descr":     npyBytes("{'descr': '"+strings.Repeat("<", 60000)+"', 'fortran_order': False, 'shape': (1,), }", x4),
		"npy-long-key":       npyBytes("{'"+strings.Repeat("k", 60000)+"': 1}", x4),
		"csv-long-bad-field": []byte("0,1\n0," + strings.Repeat("z", 4000) + "\n"),
		"csv-long-label":     []byte("0,1\n" + strings.Repeat("9", 4000) + ",1\n"),
		"csv-huge-number":    []byte("0,1\n0," + strings.Repeat("9", 4000) + "\n"),
		"csv-control":        []byte("0,1\n0,1\x00\n\x00,1\n"),
	}
}

// TestErrorsShort: whatever a data file's header holds, the error is
// under 300 bytes (with a short path), on one line, and quotes at most a
// short prefix of any value.
func TestErrorsShort(t *testing.T) {
	dir := t.TempDir()
	for name, b := range hostileHeaders() {
		p := write(t, filepath.Join(dir, name), b)
		for _, o := range []Options{{}, {Unlabelled: true}} {
			_, err := LoadFile(p, o)
			if err == nil {
				t.Errorf("%s: loaded", name)
				continue
			}
			checkShort(t, name, err)
		}
		if _, err := PeekFeatures(p, Options{}); err != nil {
			checkShort(t, name+" (PeekFeatures)", err)
		}
		if _, err := TensorNames(p); err != nil {
			checkShort(t, name+" (TensorNames)", err)
		}
	}
	os.RemoveAll(dir)
}

func checkShort(t *testing.T, name string, err error) {
	t.Helper()
	msg := err.Error()
	if len(msg) >= 300 || strings.ContainsAny(msg, "\n\x00") {
		t.Errorf("%s: error of %d bytes: %.400q", name, len(msg), msg)
	}
}
