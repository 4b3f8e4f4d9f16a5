package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// separable is a small CSV problem that trains in milliseconds; its
// features' std is below 1.
func separable(t *testing.T, name string) string {
	var rows []string
	for i := 0; i < 60; i++ {
		rows = append(rows, []string{"0,0.5,0", "1,0,0.5", "2,-0.5,-0.5"}[i%3])
	}
	return writeCSV(t, name, rows)
}

// noisy is a small CSV problem that no model fits: the same features
// carry different labels, so huge weights mean a huge loss.
func noisy(t *testing.T, name string) string {
	var rows []string
	for i := 0; i < 60; i++ {
		rows = append(rows, []string{"0,0.5,0", "1,0.5,0", "2,0,0.5", "0,0,0.5", "1,-0.5,-0.5", "2,-0.5,-0.5"}[i%6])
	}
	return writeCSV(t, name, rows)
}

// A run that diverges stops with an error saying so, where, and that the
// model file was not written; the previous model stays as it was.
func TestDivergenceKeepsOldModel(t *testing.T) {
	train := noisy(t, "train.csv")
	out := filepath.Join(t.TempDir(), "m.safetensors")
	if code, _, stderr := dsx(t, "train", "--train", train, "--test", train, "--epochs", "2", "--batch", "8", "--device", "cpu", "--out", out); code != 0 {
		t.Fatalf("healthy run exited %d: %s", code, stderr)
	}
	old, _ := os.ReadFile(out)
	for _, opt := range [][]string{{"--lr", "1e30"}, {"--optimizer", "sgd", "--lr", "1e30"}, {"--optimizer", "sgd", "--lr", "1e37"}} {
		args := append([]string{"train", "--train", train, "--test", train, "--epochs", "3", "--batch", "8", "--device", "cpu", "--out", out}, opt...)
		code, _, stderr := dsx(t, args...)
		if code != 1 || !strings.Contains(stderr, "training diverged in epoch 1, batch ") ||
			!strings.Contains(stderr, out+" was not written (the model already there is kept); try a smaller --lr") {
			t.Errorf("%v: exit %d, stderr %q", opt, code, stderr)
		}
		if now, _ := os.ReadFile(out); !bytes.Equal(now, old) {
			t.Errorf("%v: the model file changed", opt)
		}
	}
}

// --out is checked before any data are read or any epoch is run.
func TestOutCheckedFirst(t *testing.T) {
	train := separable(t, "train.csv")
	dir := t.TempDir()
	for _, c := range []struct{ out, want string }{
		{".", "--out: .: is a directory; name the file to write"},
		{dir, "is a directory"},
		{filepath.Join(dir, "missing", "m.safetensors"), "cannot write here"},
		{filepath.Join(train, "m.safetensors"), "is not a directory"},
	} {
		code, _, stderr := dsx(t, "train", "--train", train, "--test", train, "--device", "cpu", "--out", c.out)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "dsx: read") || strings.Contains(stderr, "device") {
			t.Errorf("--out %s: exit %d, stderr %q; want exit 1 saying %q before reading data or choosing a device", c.out, code, stderr, c.want)
		}
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		code, _, stderr := dsx(t, "train", "--train", train, "--test", train, "--device", "cpu", "--out", filepath.Join(ro, "m.safetensors"))
		if code != 1 || !strings.Contains(stderr, "cannot write in directory") {
			t.Errorf("read-only directory: exit %d, %q", code, stderr)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("the checks left %d files behind", len(es))
	}
}

// Test data with a finite value that scales to ±Inf (3.4e38 against a
// column whose std is below 1) is an error naming the file, row and
// feature, in eval and predict, not "test loss NaN" and NaN probabilities.
func TestExtremeTestValues(t *testing.T) {
	train := separable(t, "train.csv")
	out := filepath.Join(t.TempDir(), "m.safetensors")
	if code, _, stderr := dsx(t, "train", "--train", train, "--test", train, "--epochs", "2", "--device", "cpu", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	test := writeCSV(t, "test.csv", []string{"0,0.5,0", "1,3.4e38,3"})
	for _, cmd := range []string{"eval", "predict"} {
		code, stdout, stderr := dsx(t, cmd, "--model", out, "--test", test, "--device", "cpu")
		if code != 1 || !strings.Contains(stderr, test+": row 1, feature 0 (both 0-based): value 3.4e+38 scales to +Inf") || strings.Contains(stdout, "NaN") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", cmd, code, stdout, stderr)
		}
	}
	// Extreme training values whose distance from the mean overflows.
	bad := writeCSV(t, "bad.csv", []string{"0,3.4e38,1", "1,3.4e38,2", "2,-3.4e38,3"})
	code, _, stderr := dsx(t, "train", "--train", bad, "--test", bad, "--device", "cpu", "--out", out)
	if code != 1 || !strings.Contains(stderr, bad+": row 2, feature 0 (both 0-based): value -3.4e+38 cannot be standardised") {
		t.Errorf("train: exit %d, %q", code, stderr)
	}
}

// Class names that are not valid UTF-8 are an error before training, not
// saved as U+FFFD.
func TestClassNamesUTF8(t *testing.T) {
	train := separable(t, "train.csv")
	names := writeCSV(t, "names.txt", []string{"a", "b\xff\xfe", "c"})
	out := filepath.Join(t.TempDir(), "m.safetensors")
	code, _, stderr := dsx(t, "train", "--train", train, "--test", train, "--device", "cpu", "--class-names", names, "--out", out)
	if code != 1 || !strings.Contains(stderr, names+`:2: class name "b\xff\xfe" is not valid UTF-8`) || strings.Contains(stderr, "epoch") {
		t.Errorf("exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a model was saved")
	}
}

// The training and test files' headers are compared before either body
// is read; a CSV's BOM and a label written 1.0 lose no row, and --json
// accounts for every line.
func TestHeadersAndRowCounts(t *testing.T) {
	dir := t.TempDir()
	img := binary.BigEndian.AppendUint32(nil, 0x803)
	for _, d := range []uint32{1, 4096, 8192} {
		img = binary.BigEndian.AppendUint32(img, d)
	}
	var zb bytes.Buffer // a 32 KB gzip of 32 MiB: one image of 4096×8192
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	zw.Write(img)
	zw.Write(make([]byte, 4096*8192))
	zw.Close()
	bomb := filepath.Join(dir, "bomb-images.gz")
	os.WriteFile(bomb, zb.Bytes(), 0o644)
	labels := filepath.Join(dir, "labels")
	os.WriteFile(labels, []byte{0, 0, 8, 1, 0, 0, 0, 1, 0}, 0o644)
	train := separable(t, "train.csv")
	for _, args := range [][]string{{"--train", train, "--test", bomb, "--test-labels", labels}, {"--train", bomb, "--train-labels", labels, "--test", train}} {
		code, _, stderr := dsx(t, append([]string{"train", "--device", "cpu", "--out", filepath.Join(dir, "m")}, args...)...)
		if code != 1 || !strings.Contains(stderr, "wrong number of features: training data ") || strings.Contains(stderr, "dsx: read") {
			t.Errorf("%v: exit %d, %q; want the headers compared before either file is read", args, code, stderr)
		}
	}
	bom := filepath.Join(dir, "bom.csv")
	os.WriteFile(bom, []byte("\xef\xbb\xbf1.0,0,5\n0,5,0\n\n2.0,-5,-5\n"), 0o644)
	code, stdout, stderr := dsx(t, "train", "--train", bom, "--test", bom, "--device", "cpu", "--epochs", "1", "--out", filepath.Join(dir, "m"), "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var rep trainReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if d := rep.TrainData; d.RowsRead != 3 || len(d.Skipped) != 1 || d.Skipped[0].Rows != 1 || d.Skipped[0].Reason != "blank lines" {
		t.Errorf("train_data %+v: want 3 rows read and 1 blank line skipped", d)
	}
}

// An unknown command or a bad flag value of megabytes gives a short error.
func TestLongValuesQuotedShort(t *testing.T) {
	long := strings.Repeat("x", 10<<20)
	for _, args := range [][]string{{long}, {"train", "--device", long}, {"bench", "--shapes", long}, {"train", "--ignore-index", long}} {
		_, _, stderr := dsx(t, args...)
		if len(stderr) > 4096 || !strings.Contains(stderr, `"xxxxxxxx`) {
			t.Errorf("dsx %.20s…: %d bytes of stderr", strings.Join(args, " "), len(stderr))
		}
	}
}
