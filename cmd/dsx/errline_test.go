package main

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// TestErrorLinesShort: an error about what a file holds is one line under
// 300 bytes (with a short path); one about a command-line value quotes it
// short; and even a file name of a megabyte, or one holding a newline,
// gives one line of at most maxErrorLine bytes.
func TestErrorLinesShort(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	os.Chdir(dir)
	huge := strings.Repeat("n", 1<<20)
	header := `{"` + huge + `":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	st := append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header...)
	os.WriteFile("h.safetensors", append(st, 0, 0, 0, 0), 0o644)
	os.WriteFile("peers.json", []byte(`[{"b": `+strings.Repeat("9", 200000)+`}]`), 0o644)
	os.WriteFile("d.csv", []byte("0,1\n1,2\n"), 0o644)
	for _, c := range []struct {
		args []string
		max  int
	}{
		{[]string{"train", "--train", "h.safetensors", "--device", "cpu", "--out", "m"}, 300},
		{[]string{"predict", "--test", "d.csv", "--model", "h.safetensors", "--device", "cpu"}, 300},
		{[]string{"bench", "--device", "none", "--peers", "peers.json"}, 300},
		{[]string{"train", "--train", "d.csv", "--optimizer", huge, "--device", "cpu", "--out", "m"}, 300},
		{[]string{"train", "--train", huge, "--device", "cpu", "--out", "m"}, maxErrorLine + 20},
		{[]string{"predict", "--test", "d.csv", "--model", "x", "--out", "a\nb" + huge + ".txt"}, maxErrorLine + 20},
		{[]string{"train", "--train", "d.csv", "--device", "cpu", "--out", "a\n/b"}, 300},
	} {
		_, _, stderr := dsx(t, c.args...)
		// The error is the last line; the lines before it say which
		// device was chosen.
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		if len(last) >= c.max || !strings.HasPrefix(last, "dsx "+c.args[0]+": ") || strings.Contains(stderr, "nnnnnnnnnn\n") {
			t.Errorf("dsx %.60q: error line of %d bytes: %.200q", strings.Join(c.args, " "), len(last), last)
		}
	}
}
