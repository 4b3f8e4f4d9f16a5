package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/internal/testio"
)

// TestClassNamesBounded: --class-names holds at most the names it may
// give (the class limit, lines of at most maxClassName bytes) whatever the
// file: /dev/urandom, /dev/zero or an endless stream of blank lines stop
// with a short error in bounded memory (the issue's /dev/urandom grew to
// 8.9 GB and died).
func TestClassNamesBounded(t *testing.T) {
	dir := t.TempDir()
	many := filepath.Join(dir, "many.txt")
	var b bytes.Buffer
	for i := range 100001 {
		fmt.Fprintf(&b, "c%d\n", i)
	}
	os.WriteFile(many, b.Bytes(), 0o644)
	four := filepath.Join(dir, "four.txt")
	os.WriteFile(four, []byte("a\nb\nc\nd\n\n\n"), 0o644)
	long := filepath.Join(dir, "long.txt")
	os.WriteFile(long, append([]byte("a\n"), bytes.Repeat([]byte("x"), 5000)...), 0o644)
	endless := filepath.Join(dir, "endless")
	if err := os.WriteFile(endless, bytes.Repeat([]byte("\n"), 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path    string
		classes int
		want    string
	}{
		{"/dev/urandom", 0, "/dev/urandom:"}, // not UTF-8, or too long: either way short
		{"/dev/zero", 0, "longer than 1024 bytes"},
		{many, 0, ":100001: more than 100000 class names"},
		{four, 3, ":4: more than 3 class names (--classes)"},
		{long, 0, `:2: class name "xxxxxxxx`},
		{endless, 1, "more than 2052 bytes"},
	} {
		if _, err := os.Stat(c.path); err != nil {
			continue
		}
		var err error
		got := testio.Allocated(func() { _, err = readClassNames(c.path, c.classes) })
		if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 300 {
			t.Errorf("%s: %v; want a short error containing %q", c.path, err, c.want)
		}
		// 100000 short names take a few MB; the bound is what the limit
		// allows, never what the file holds.
		if got > 64<<20 {
			t.Errorf("%s: allocated %d MB", c.path, got>>20)
		}
	}
	if names, err := readClassNames(four, 4); err != nil || len(names) != 4 {
		t.Errorf("four names, --classes 4: %v, %v", names, err)
	}
}
