package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func file(header string, dataLen int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

func TestReadHeader(t *testing.T) {
	good := `{"__metadata__":{"k":"v"},"y":{"dtype":"I64","shape":[3],"data_offsets":[24,48]},"x":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}}`
	h, err := ReadHeader(bytes.NewReader(file(good, 48)), int64(len(file(good, 48))))
	if err != nil {
		t.Fatal(err)
	}
	if h.Meta["k"] != "v" || strings.Join(h.Names(), ",") != "x,y" || h.DataStart != 8+int64(len(good)) || h.DataLen != 48 {
		t.Errorf("header %+v", h)
	}
	if x, ok := h.Get("x"); !ok || x.Count != 6 || x.End != 24 {
		t.Errorf("x = %+v", x)
	}
	for _, tc := range []struct {
		name   string
		header string
		data   int
		want   string
	}{
		{"count overflow", `{"x":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,8]}}`, 8, "overflows"},
		{"bytes overflow", `{"x":{"dtype":"F64","shape":[2305843009213693952,2],"data_offsets":[0,8]}}`, 8, "needs more than 2^64 bytes"},
		{"negative dim", `{"x":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}`, 8, "negative"},
		{"claims more than the file", `{"x":{"dtype":"F32","shape":[1000000,1024],"data_offsets":[0,4096000000]}}`, 8, "truncated: tensor \"x\" needs bytes 0..4096000000 but data has 8"},
		{"unknown dtype", `{"x":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16, `unknown dtype "F128"`},
		{"unknown field", `{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`, 4, "invalid header entry"},
		{"offsets reversed", `{"x":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, 4, "end before they begin"},
		{"tail", `{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8, "4 trailing bytes"},
		{"gap", `{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8, "gap in data: bytes 0..4"},
		{"overlap", `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8, "overlap"},
		{"not JSON", `{"x":`, 0, "invalid JSON header"},
	} {
		b := file(tc.header, tc.data)
		if _, err := ReadHeader(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// The length prefix is checked against the file before anything is read.
	huge := binary.LittleEndian.AppendUint64(nil, math.MaxUint64)
	if _, err := ReadHeader(bytes.NewReader(huge), 8); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("huge header length: %v", err)
	}
	if _, err := ReadHeader(bytes.NewReader(huge[:3]), 3); err == nil || !strings.Contains(err.Error(), "truncated: 3 bytes") {
		t.Errorf("3-byte file: %v", err)
	}
}

// Errors quote at most a short prefix of a name from the file, and a
// shape of more than MaxDims dimensions is not printed.
func TestShortErrors(t *testing.T) {
	name := strings.Repeat("n", 10<<20)
	dims := strings.Repeat("1,", 100000) + "1"
	for _, h := range []string{
		`{"` + name + `":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`,
		`{"x":{"dtype":"` + name + `","shape":[1],"data_offsets":[0,16]}}`,
		`{"` + name + `":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
		`{"x":{"dtype":"F32","shape":[` + dims + `],"data_offsets":[0,8]}}`,
	} {
		b := file(h, 16)
		_, err := ReadHeader(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			t.Errorf("no error for a header of %d bytes", len(h))
		} else if len(err.Error()) > 200 {
			t.Errorf("error of %d bytes: %.200v", len(err.Error()), err)
		}
	}
}
