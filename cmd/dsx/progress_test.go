package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dsx/model"
)

// terminal is a buffer that passes for a terminal: the progress bar draws
// on it.
type terminal struct{ bytes.Buffer }

func (*terminal) Terminal() bool { return true }

// writeIDXDir writes an MNIST-style folder of gzipped IDX files into dir
// (a new temporary one when ""): rows images of side×side pixels in train
// and test, labels 0..2.
func writeIDXDir(t *testing.T, dir string, rows, side int) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, magic uint32, dims []uint32, body []byte) {
		var raw bytes.Buffer
		binary.Write(&raw, binary.BigEndian, magic)
		binary.Write(&raw, binary.BigEndian, dims)
		raw.Write(body)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		zw.Close()
		if err := os.WriteFile(filepath.Join(dir, name+".gz"), gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := side * side
	pix, labels := make([]byte, rows*n), make([]byte, rows)
	for r := range rows {
		labels[r] = byte(r % 3)
		for j := range n {
			pix[r*n+j] = byte((r*7 + j*int(labels[r]+1)*13) % 256)
		}
	}
	for _, set := range []string{"train", "t10k"} {
		write(set+"-images-idx3-ubyte", 0x803, []uint32{uint32(rows), uint32(side), uint32(side)}, pix)
		write(set+"-labels-idx1-ubyte", 0x801, []uint32{uint32(rows)}, labels)
	}
	return dir
}

// TestProgressReadingIDX: on a terminal, reading a folder of IDX files
// (--data, the default Fashion-MNIST's kind) or one IDX file draws the
// progress bar, as reading the other formats does, and erases it after.
func TestProgressReadingIDX(t *testing.T) {
	dir := writeIDXDir(t, "", 30, 4)
	mp := filepath.Join(t.TempDir(), "m.safetensors")
	if err := model.Save(mp, &model.Model{W: make([]float32, 16*3), B: make([]float32, 3), N: 16, T: 3}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"eval", "--model", mp, "--data", dir, "--device", "cpu"},
		{"eval", "--model", mp, "--test", filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), "--test-labels", filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), "--device", "cpu"},
	} {
		var stdout bytes.Buffer
		var stderr terminal
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		what := args[4]
		if !strings.Contains(stderr.String(), "] 100% reading "+what+" ") || !strings.Contains(stderr.String(), "\r\033[K") {
			t.Errorf("%v: no progress bar reading %s, or not erased:\n%q", args, what, stderr.String())
		}
	}
}
