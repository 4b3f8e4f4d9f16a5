package main

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"dsx/data"
	"dsx/model"
)

// blobs returns rows of n features in T Gaussian clusters (fixed seed):
// separable enough that a trained head gets most rows right.
func blobs(rows, n, T int, seed uint64) (x []float32, y []int64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	centres := make([]float64, T*n)
	for i := range centres {
		centres[i] = rand.New(rand.NewPCG(99, uint64(i))).NormFloat64() * 3
	}
	x = make([]float32, rows*n)
	y = make([]int64, rows)
	for r := range rows {
		c := rng.IntN(T)
		y[r] = int64(c)
		for j := range n {
			x[r*n+j] = float32(centres[c*n+j] + rng.NormFloat64() + 10*float64(j)) // offsets: scaling matters
		}
	}
	return x, y
}

func writeNPY[E float32 | float64 | int32 | int64](t *testing.T, path string, shape []int, v []E) string {
	t.Helper()
	var buf bytes.Buffer
	if err := data.WriteNPY(&buf, shape, v); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readNPY reads a little-endian .npy file written by dsx: its descr, shape
// and raw data.
func readNPY(t *testing.T, path string) (descr string, shape []int, raw []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		t.Fatalf("%s is not a .npy file", path)
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	h := string(b[10 : 10+hl])
	descr = h[strings.Index(h, "'descr': '")+10:]
	descr = descr[:strings.IndexByte(descr, '\'')]
	sh := h[strings.Index(h, "'shape': (")+10:]
	sh = sh[:strings.IndexByte(sh, ')')]
	for _, f := range strings.Split(sh, ",") {
		if f = strings.TrimSpace(f); f != "" {
			d, _ := strconv.Atoi(f)
			shape = append(shape, d)
		}
	}
	return descr, shape, b[10+hl:]
}

// reference predicts with the saved model in Go (model.Predict): the
// probabilities every output format must agree with.
func reference(t *testing.T, modelPath string, x []float32, rows int) ([]int32, []float32, *model.Model) {
	t.Helper()
	m, err := model.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	xs := append([]float32(nil), x...)
	m.ScaleInputs(xs, rows)
	labels, probs, err := m.Predict(xs, rows)
	if err != nil {
		t.Fatal(err)
	}
	return labels, probs, m
}

// TestNPYTrainPredict trains on .npy features and labels, then predicts
// on the features alone in every output format, checked against the model
// read back and run in Go.
func TestNPYTrainPredict(t *testing.T) {
	const rows, n, T = 600, 5, 4
	dir := t.TempDir()
	x, y := blobs(rows, n, T, 1)
	xp := writeNPY(t, filepath.Join(dir, "x.npy"), []int{rows, n}, x)
	yp := writeNPY(t, filepath.Join(dir, "y.npy"), []int{rows}, y)
	tx, ty := blobs(100, n, T, 2)
	txp := writeNPY(t, filepath.Join(dir, "tx.npy"), []int{100, n}, tx)
	typ := writeNPY(t, filepath.Join(dir, "ty.npy"), []int{100}, ty)
	names := filepath.Join(dir, "names.txt")
	os.WriteFile(names, []byte("north\nsouth\neast, or so\nwest \"w\"\n"), 0o644)
	mp := filepath.Join(dir, "m.safetensors")
	code, stdout, stderr := dsx(t, "train", "--train", xp, "--train-labels", yp, "--test", txp, "--test-labels", typ,
		"--class-names", names, "--epochs", "20", "--batch", "32", "--lr", "0.01", "--device", "cpu", "--out", mp, "--json")
	if code != 0 {
		t.Fatalf("train exited %d: %s", code, stderr)
	}
	var rep trainReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.TestAccuracy == nil || *rep.TestAccuracy < 0.9 || rep.Classes != T || rep.TrainData == nil || rep.TrainData.Format != "npy" ||
		rep.TrainData.RowsRead != rows || rep.TestData.RowsRead != 100 || rep.TrainData.Skipped == nil || rep.LoadSeconds <= 0 {
		t.Errorf("report %+v train %+v test %+v", rep, rep.TrainData, rep.TestData)
	}
	if !strings.Contains(stderr, "x.npy + "+yp+": 600 rows × 5 features, 4 classes") {
		t.Errorf("no line saying what was read: %s", stderr)
	}
	labels, probs, m := reference(t, mp, tx, 100)
	if strings.Join(m.Classes, "|") != `north|south|east, or so|west "w"` {
		t.Errorf("class names in the model: %q", m.Classes)
	}

	// CSV with the top 2 and their probabilities, on features without labels.
	code, stdout, stderr = dsx(t, "predict", "--model", mp, "--test", txp, "--top", "2", "--proba", "--device", "cpu")
	if code != 0 {
		t.Fatalf("predict exited %d: %s", code, stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// --proba is every class's probability, after the top-K columns.
	want := "row,predicted,class,top1,top1_class,top1_p,top2,top2_class,top2_p,p_0,p_1,p_2,p_3"
	if len(recs) != 101 || strings.Join(recs[0], ",") != want {
		t.Fatalf("%d lines, header %q, want %q", len(recs), recs[0], want)
	}
	for i, r := range recs[1:] {
		p1, _ := strconv.ParseFloat(r[5], 64)
		p2, _ := strconv.ParseFloat(r[8], 64)
		c2, _ := strconv.Atoi(r[6])
		if r[1] != strconv.Itoa(int(labels[i])) || r[2] != m.Classes[labels[i]] || r[3] != r[1] || p1 < p2 ||
			math.Abs(p1-float64(probs[i*T+int(labels[i])])) > 1e-5 || math.Abs(p2-float64(probs[i*T+c2])) > 1e-5 {
			t.Fatalf("row %d: %q; want class %d (%s), probabilities %v", i, r, labels[i], m.Classes[labels[i]], probs[i*T:i*T+T])
		}
		for c := range T {
			if pc, _ := strconv.ParseFloat(r[9+c], 64); math.Abs(pc-float64(probs[i*T+c])) > 1e-5 {
				t.Fatalf("row %d: p_%d %v, want %v", i, c, pc, probs[i*T+c])
			}
		}
	}

	// .npy outputs: classes, top-K classes, probabilities.
	for _, tc := range []struct {
		args  []string
		descr string
		shape []int
	}{
		{nil, "<i8", []int{100}},
		{[]string{"--top", "3"}, "<i8", []int{100, 3}},
		{[]string{"--proba"}, "<f4", []int{100, T}},
	} {
		out := filepath.Join(dir, "p.npy")
		code, _, stderr := dsx(t, append([]string{"predict", "--model", mp, "--test", txp, "--device", "cpu", "--out", out}, tc.args...)...)
		if code != 0 {
			t.Fatalf("predict %v exited %d: %s", tc.args, code, stderr)
		}
		descr, shape, raw := readNPY(t, out)
		if descr != tc.descr || len(shape) != len(tc.shape) || shape[0] != 100 {
			t.Fatalf("%v: %s %v, want %s %v", tc.args, descr, shape, tc.descr, tc.shape)
		}
		cols := 1
		if len(shape) == 2 {
			cols = shape[1]
		}
		for i := range 100 {
			if descr == "<i8" {
				if c := int32(binary.LittleEndian.Uint64(raw[8*i*cols:])); c != labels[i] {
					t.Fatalf("%v: row %d class %d, want %d", tc.args, i, c, labels[i])
				}
				continue
			}
			for c := range T {
				p := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*T+c):]))
				if math.Abs(float64(p-probs[i*T+c])) > 1e-5 {
					t.Fatalf("row %d class %d: p %v, want %v", i, c, p, probs[i*T+c])
				}
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 7 { // x, y, tx, ty, names, model, p.npy
			t.Errorf("the folder holds %d files: a temporary file left behind?", len(entries))
		}
	}

	// JSON with labels: the label appears and accuracy is reported.
	out := filepath.Join(dir, "p.json")
	code, _, stderr = dsx(t, "predict", "--model", mp, "--test", txp, "--test-labels", typ, "--top", "1", "--device", "cpu", "--out", out)
	if code != 0 || !strings.Contains(stderr, "accuracy") {
		t.Fatalf("predict --out json exited %d: %s", code, stderr)
	}
	var rowsJ []jsonRow
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &rowsJ); err != nil {
		t.Fatal(err)
	}
	if len(rowsJ) != 100 || rowsJ[7].Label == nil || int64(*rowsJ[7].Label) != ty[7] || len(rowsJ[7].Top) != 1 || rowsJ[7].Top[0].Name != rowsJ[7].Class {
		t.Errorf("JSON rows: %+v", rowsJ[7])
	}
}

// TestPredictFeatureCSV: a CSV of features only (as many columns as the
// model has features) predicts; one with a label column still works.
func TestPredictFeatureCSV(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 60; i++ {
		lines = append(lines, []string{"0,5,0", "1,0,5", "2,-5,-5"}[i%3])
	}
	train := writeCSV(t, "train.csv", lines)
	mp := filepath.Join(dir, "m.safetensors")
	if code, _, stderr := dsx(t, "train", "--train", train, "--test", train, "--epochs", "30", "--batch", "8", "--lr", "0.05", "--device", "cpu", "--out", mp); code != 0 {
		t.Fatalf("train: %s", stderr)
	}
	feats := writeCSV(t, "f.csv", []string{"x,y", "5,0", "0,5", "-5,-5"})
	code, stdout, stderr := dsx(t, "predict", "--model", mp, "--test", feats, "--proba", "--device", "cpu")
	if code != 0 {
		t.Fatalf("predict on features only exited %d: %s", code, stderr)
	}
	lines = strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 || lines[0] != "row,predicted,class,p_0,p_1,p_2" {
		t.Fatalf("output:\n%s", stdout)
	}
	for i, l := range lines[1:] {
		if f := strings.Split(l, ","); f[1] != strconv.Itoa(i) {
			t.Errorf("row %d predicted %s: %s", i, f[1], l)
		}
	}
	if !strings.Contains(stderr, "skipped 1 header line") {
		t.Errorf("the header line is not reported: %s", stderr)
	}
	bad := writeCSV(t, "bad.csv", []string{"1,2,3,4"})
	if code, _, stderr := dsx(t, "predict", "--model", mp, "--test", bad, "--device", "cpu"); code != 1 ||
		!strings.Contains(stderr, "expects 2 features") || !strings.Contains(stderr, "4 columns") {
		t.Errorf("4 columns for a 2-feature model: exit %d, %s", code, stderr)
	}
}
