package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStdoutWriteFailure: a command whose output cannot be written (stdout
// on /dev/full, where every write fails with ENOSPC) exits 1 with an error
// saying so, whichever command and output format, instead of exit 0 with
// the result lost.
func TestStdoutWriteFailure(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	train := separable(t, "train.csv")
	dir := t.TempDir()
	m := filepath.Join(dir, "m.safetensors")
	if code, _, stderr := dsx(t, "train", "--train", train, "--epochs", "1", "--device", "cpu", "--out", m); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{
		{"eval", "--test", train, "--model", m, "--device", "cpu"},
		{"eval", "--test", train, "--model", m, "--device", "cpu", "--json"},
		{"predict", "--test", train, "--model", m, "--device", "cpu"},
		{"predict", "--test", train, "--model", m, "--device", "cpu", "--json"},
		{"devices"},
		{"devices", "--json"},
		{"plan", "--shape", "8x4x10"},
		{"plan", "--shape", "8x4x10", "--json"},
		{"bench", "--device", "cpu", "--shapes", "8x4x3", "--steps", "1", "--warmup", "0"},
		{"bench", "--device", "cpu", "--shapes", "8x4x3", "--steps", "1", "--warmup", "0", "--json"},
		{"train", "--train", train, "--epochs", "1", "--device", "cpu", "--out", filepath.Join(dir, "m2.safetensors")},
		{"train", "--train", train, "--epochs", "1", "--device", "cpu", "--out", filepath.Join(dir, "m3.safetensors"), "--json"},
		{"help"},
		{"eval", "--help"},
	} {
		var errb bytes.Buffer
		code := run(args, full, &errb)
		if code != 1 || !strings.Contains(errb.String(), "no space left on device") {
			t.Errorf("dsx %s > /dev/full: exit %d, stderr %q; want exit 1 naming the failed write", strings.Join(args, " "), code, errb.String())
		}
	}
}
