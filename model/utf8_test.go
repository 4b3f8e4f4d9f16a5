package model

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Class names and metadata that are not valid UTF-8 are an error on Save,
// naming the field, and the old file stays; a file whose metadata holds
// invalid UTF-8 is an error on Load, not read as U+FFFD.
func TestUTF8Metadata(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Save(p, sample()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	for _, c := range []struct {
		edit func(m *Model)
		want string
	}{
		{func(m *Model) { m.Classes[1] = "\xff\xfe" }, `model class name 1 ("\xff\xfe") is not valid UTF-8`},
		{func(m *Model) { m.Meta["trained_on"] = "a\xffb" }, `model metadata "trained_on": value "a\xffb" is not valid UTF-8`},
		{func(m *Model) { m.Meta["k\xfe"] = "v" }, `model metadata key "k\xfe" is not valid UTF-8`},
	} {
		m := sample()
		c.edit(m)
		if err := Save(p, m); err == nil || !strings.Contains(err.Error(), p+": not saved: "+c.want) {
			t.Errorf("Save: %v, want %s", err, c.want)
		}
		if err := m.Validate(); err == nil {
			t.Error("Validate passed")
		}
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Error("a failed Save changed the file")
	}
	// A file written by another tool with invalid bytes in its metadata.
	good, err := encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ old, new, want string }{
		{`"epochs":"5"`, "\"epochs\":\"\xff5\"", `__metadata__ "epochs": value is not valid UTF-8 (byte `},
		{`cat`, "c\xfet", `__metadata__ "classes": value is not valid UTF-8`},
		{`"epochs"`, "\"ep\xffhs\"", `header is not valid UTF-8 at byte `},
	} {
		b := bytes.Replace(good, []byte(c.old), []byte(c.new), 1)
		if bytes.Equal(b, good) {
			t.Fatalf("%s not in the file", c.old)
		}
		// Keep the header length right: the edit changes it by d bytes.
		d := len(c.new) - len(c.old)
		b = append(b[:0:0], b...)
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		n += d
		b[0], b[1], b[2] = byte(n), byte(n>>8), byte(n>>16)
		q := writeBytes(t, b)
		_, err := Load(q)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load with %q: %v, want %s", c.new, err, c.want)
		}
		if errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}
