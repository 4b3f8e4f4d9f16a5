package model

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadErrorsShort: whatever a model file's header holds (a 1 MB
// tensor name, a 200 KB number or field name, a 64-dimension shape, a
// newline or NUL in a name, a long metadata value), the error is under
// 300 bytes on one line.
func TestLoadErrorsShort(t *testing.T) {
	huge := strings.Repeat("n", 1<<20)
	digits := strings.Repeat("7", 200000)
	dims64 := strings.TrimSuffix(strings.Repeat("4294967296,", 64), ",")
	dir := t.TempDir()
	for name, header := range map[string]string{
		"1MB-name":       `{"` + huge + `":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
		"newline-name":   `{"W\nb\u0000":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
		"shape-digits":   `{"W":{"dtype":"F32","shape":[` + digits + `],"data_offsets":[0,4]}}`,
		"offset-digits":  `{"W":{"dtype":"F32","shape":[1],"data_offsets":[0,` + digits + `]}}`,
		"unknown-field":  `{"W":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"` + strings.Repeat("f", 200000) + `":1}}`,
		"64-dims":        `{"W":{"dtype":"F32","shape":[` + dims64 + `],"data_offsets":[0,4]}}`,
		"64-dims-of-1":   `{"W":{"dtype":"F32","shape":[` + strings.TrimSuffix(strings.Repeat("1,", 64), ",") + `],"data_offsets":[0,4]}}`,
		"b-64-dims":      `{"W":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[` + strings.TrimSuffix(strings.Repeat("1,", 63), ",") + `,0],"data_offsets":[4,4]}}`,
		"classes-digits": `{"__metadata__":{"classes":"[` + digits + `]"},"W":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
		"format-long":    `{"__metadata__":{"format":"` + huge + `"},"W":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
		"long-dtype":     `{"W":{"dtype":"` + huge + `","shape":[1],"data_offsets":[0,4]}}`,
		"array":          `["` + huge + `"]`,
		"bom":            "\xef\xbb\xbf{}",
	} {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
		b = append(append(b, header...), 0, 0, 128, 63)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil {
			t.Errorf("%s: loaded", name)
			continue
		}
		if msg := err.Error(); len(msg) >= 300 || strings.ContainsAny(msg, "\n\x00") {
			t.Errorf("%s: error of %d bytes: %.400q", name, len(msg), msg)
		}
	}
}
