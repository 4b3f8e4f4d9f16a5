//go:build unix

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"dsx/internal/testio"
)

// fifoOf is testio.FIFO: a named pipe that b is written into.
func fifoOf(t *testing.T, b []byte) string { return testio.FIFO(t, "fifo", b) }

// TestStreamInputs: dsx reads a CSV through a FIFO or a pipe whole (the
// issue's `cat a.csv | dsx predict --test /dev/stdin` printed "predicted
// 3616 rows" of 20000; `train --train FIFO` hung on a second open); one
// stream given twice, and a model through a pipe, are errors up front.
func TestStreamInputs(t *testing.T) {
	var b bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&b, "%d,%d.5,%d,%d\n", i%3, i%5, i%7, -(i % 3))
	}
	csv := b.Bytes()
	dir := t.TempDir()
	m := filepath.Join(dir, "m.safetensors")
	code, _, stderr := dsx(t, "train", "--train", fifoOf(t, csv), "--test", fifoOf(t, csv[:4000]), "--epochs", "1", "--device", "cpu", "--out", m,
		"--class-names", fifoOf(t, []byte("a\nb\nc\n")))
	if code != 0 || !strings.Contains(stderr, "20000 rows × 3 features, 3 classes") {
		t.Fatalf("train on FIFOs: exit %d: %s", code, stderr)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() { w.Write(csv); w.Close() }()
	code, stdout, stderr := dsx(t, "predict", "--test", fmt.Sprintf("/dev/fd/%d", r.Fd()), "--model", m, "--device", "cpu")
	if code != 0 || !strings.Contains(stderr, "predicted 20000 rows") || strings.Count(stdout, "\n") != 20001 {
		t.Errorf("predict through a pipe: exit %d, %d lines, stderr %q", code, strings.Count(stdout, "\n"), stderr)
	}
	code, _, stderr = dsx(t, "eval", "--test", fifoOf(t, bytes.ReplaceAll(csv, []byte("\n"), []byte("\r\n"))), "--model", m, "--device", "cpu")
	if code != 0 || !strings.Contains(stderr, "20000 rows") {
		t.Errorf("eval through a FIFO: exit %d: %s", code, stderr)
	}
	// One stream as two inputs.
	p := filepath.Join(t.TempDir(), "p")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = dsx(t, "train", "--train", p, "--test", p, "--device", "cpu", "--out", filepath.Join(dir, "m2"))
	if code != 2 || !strings.Contains(stderr, "read once") {
		t.Errorf("one FIFO as --train and --test: exit %d, %q", code, stderr)
	}
	// A model is read by its size: a pipe is refused, not read.
	code, _, stderr = dsx(t, "eval", "--test", fifoOf(t, csv), "--model", fifoOf(t, []byte("x")), "--device", "cpu")
	if code != 1 || !strings.Contains(stderr, "not a regular file") {
		t.Errorf("model through a FIFO: exit %d, %q", code, stderr)
	}
}
