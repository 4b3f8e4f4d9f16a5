package model

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"dsx/version"
)

// TestFormatAndVersion: Save records the format version and this build's
// dsx version, Load returns them apart from Meta (so that a loaded model
// saves again), and the Format string names FormatVersion.
func TestFormatAndVersion(t *testing.T) {
	if Format != "dsx-softmax-v"+strconv.Itoa(FormatVersion) {
		t.Fatalf("Format %q and FormatVersion %d disagree", Format, FormatVersion)
	}
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Save(p, sample()); err != nil {
		t.Fatal(err)
	}
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.FileFormat != Format || m.DsxVersion != version.Short() || m.DsxVersion == "" {
		t.Errorf("loaded FileFormat %q, DsxVersion %q; want %q, %q", m.FileFormat, m.DsxVersion, Format, version.Short())
	}
	if _, ok := m.Meta["dsx_version"]; ok {
		t.Errorf("dsx_version in Meta %v: Save would refuse the loaded model", m.Meta)
	}
	if want := "format dsx-softmax-v1, saved by dsx " + version.Short(); m.Origin() != want {
		t.Errorf("Origin %q, want %q", m.Origin(), want)
	}
	if err := Save(p, m); err != nil {
		t.Errorf("saving a loaded model again: %v", err)
	}
	m.Meta["dsx_version"] = "9"
	if err := Save(p, m); err == nil || !strings.Contains(err.Error(), `"dsx_version" is reserved`) {
		t.Errorf("Meta[dsx_version] saved: %v", err)
	}
}

// TestOlderAndNewerFormats: a file from before versions were recorded (no
// dsx_version), and one without any format key, are read; a later format
// version is ErrNewerFormat naming what wrote it; a malformed one is not a
// dsx model.
func TestOlderAndNewerFormats(t *testing.T) {
	f32 := func(shape []int, b, e int) map[string]any {
		return map[string]any{"dtype": "F32", "shape": shape, "data_offsets": []int{b, e}}
	}
	file := func(meta map[string]string) string {
		h := map[string]any{"W": f32([]int{2, 2}, 0, 16), "b": f32([]int{2}, 16, 24)}
		if meta != nil {
			h["__metadata__"] = meta
		}
		return writeRaw(t, h, f32bytes([]float32{1, 2, 3, 4, 0, 0}))
	}
	for _, c := range []struct {
		name     string
		meta     map[string]string
		format   string
		origin   string
		err      error
		contains []string
	}{
		{"older dsx", map[string]string{"format": "dsx-softmax-v1", "epochs": "3"}, "dsx-softmax-v1",
			"format dsx-softmax-v1, saved by a dsx from before models recorded its version", nil, nil},
		{"not dsx", nil, "", "no format key (not saved by dsx), saved by a dsx from before models recorded its version", nil, nil},
		{"newer", map[string]string{"format": "dsx-softmax-v2", "dsx_version": "0.4.0"}, "", "", ErrNewerFormat,
			[]string{`"dsx-softmax-v2" (version 2)`, `written by dsx "0.4.0"`, "reads versions up to dsx-softmax-v1", "upgrade dsx"}},
		{"newer, no version", map[string]string{"format": "dsx-softmax-v17"}, "", "", ErrNewerFormat, []string{"written by a newer dsx"}},
		{"newer checkpoint", map[string]string{"format": "dsx-checkpoint-v2"}, "", "", ErrNewerFormat, []string{"up to dsx-checkpoint-v1"}},
		{"version 0", map[string]string{"format": "dsx-softmax-v0"}, "", "", nil, []string{`metadata format "dsx-softmax-v0", want "dsx-softmax-v1"`}},
		{"leading zero", map[string]string{"format": "dsx-softmax-v01"}, "", "", nil, []string{`want "dsx-softmax-v1"`}},
		{"other", map[string]string{"format": "pt"}, "", "", nil, []string{`metadata format "pt"`}},
	} {
		p := file(c.meta)
		m, err := Load(p)
		if c.contains == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if m.FileFormat != c.format || m.DsxVersion != "" || m.Origin() != c.origin {
				t.Errorf("%s: FileFormat %q, DsxVersion %q, Origin %q; want %q, \"\", %q", c.name, m.FileFormat, m.DsxVersion, m.Origin(), c.format, c.origin)
			}
			continue
		}
		if err == nil || (c.err != nil && !errors.Is(err, c.err)) || (c.err == nil && errors.Is(err, ErrNewerFormat)) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v; want one naming %s (wrapping %v)", c.name, err, p, c.err)
			continue
		}
		for _, w := range c.contains {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
}
