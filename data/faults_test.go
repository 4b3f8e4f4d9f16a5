package data

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
)

// TestHeaderFaultsNamed: a corrupt safetensors header or an IDX file of a
// type dsx does not read is reported as what it is, not taken for a CSV
// whose binary bytes are quoted as a label.
func TestHeaderFaultsNamed(t *testing.T) {
	good := stBytes(stTensor{"features", "F32", []int{1, 1}, f32le(1)}, stTensor{"labels", "I64", []int{1}, i64le(0)})
	withLen := func(n uint64) []byte {
		b := append([]byte(nil), good...)
		binary.LittleEndian.PutUint64(b, n)
		return b
	}
	array := stRaw(`["features"]`, nil)
	bom := stRaw("\xef\xbb\xbf"+`{"features":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}`, f32le(1))
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"length 2^63", withLen(1 << 63), "corrupt safetensors file: header length 9223372036854775808 goes beyond the end of the file"},
		{"length past the end", withLen(uint64(len(good))), "corrupt safetensors file: header length"},
		{"JSON array", array, "header is not a JSON object"},
		{"BOM", bom, "byte order mark"},
		{"IDX float images", idxBytes(0x00000d03, []uint32{1, 2, 2}, make([]byte, 16)), "an IDX file of float32 with 3 dimensions (magic 0x00000d03)"},
		{"IDX int32 labels", idxBytes(0x00000c01, []uint32{2}, make([]byte, 8)), "an IDX file of int32 with 1 dimensions"},
		{"IDX float images, gzipped", gz(idxBytes(0x00000d03, []uint32{1, 2, 2}, make([]byte, 16))), "an IDX file of float32"},
	} {
		p := write(t, filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")), c.b)
		for _, o := range []Options{{}, {Unlabelled: true}, {Features: 4}} {
			_, err := LoadFile(p, o)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "column 1") {
				t.Errorf("%s %+v: %v; want %q", c.name, o, err, c.want)
			}
		}
		if _, err := PeekFeatures(p, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: PeekFeatures: %v; want %q", c.name, err, c.want)
		}
	}
}
