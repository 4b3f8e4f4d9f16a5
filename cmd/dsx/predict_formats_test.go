package main

import (
	"archive/zip"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestPredictTopAndProba: --top K and --proba together give the K best
// classes with their probabilities and, apart from them, the probability
// of every class, in CSV, JSON and .npz alike (checked against the model
// run in Go); a .npy file, which holds one array, refuses the pair before
// any device line with a pointer to .npz; a K above the model's T is a
// usage error found after reading the model but before the device.
func TestPredictTopAndProba(t *testing.T) {
	const rows, n, T, K = 40, 5, 4, 2
	dir := t.TempDir()
	x, y := blobs(rows, n, T, 3)
	xp := writeNPY(t, filepath.Join(dir, "x.npy"), []int{rows, n}, x)
	yp := writeNPY(t, filepath.Join(dir, "y.npy"), []int{rows}, y)
	mp := filepath.Join(dir, "m.safetensors")
	if code, _, stderr := dsx(t, "train", "--train", xp, "--train-labels", yp, "--epochs", "5", "--batch", "8", "--device", "cpu", "--out", mp); code != 0 {
		t.Fatalf("train: %s", stderr)
	}
	_, probs, _ := reference(t, mp, x, rows)
	// want checks one row's top-K (classes, probabilities) and proba.
	want := func(format string, i int, top []int, topP, proba []float64) {
		t.Helper()
		p := probs[i*T : (i+1)*T]
		order := []int{0, 1, 2, 3}
		sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
		if len(top) != K || len(topP) != K || len(proba) != T {
			t.Fatalf("%s row %d: %d top classes, %d top probabilities, %d probabilities; want %d, %d, %d", format, i, len(top), len(topP), len(proba), K, K, T)
		}
		for k := range K {
			if top[k] != order[k] || math.Abs(topP[k]-float64(p[order[k]])) > 1e-5 {
				t.Fatalf("%s row %d: top %v %v, want %v of %v", format, i, top, topP, order[:K], p)
			}
		}
		for c := range T {
			if math.Abs(proba[c]-float64(p[c])) > 1e-5 {
				t.Fatalf("%s row %d: proba %v, want %v", format, i, proba, p)
			}
		}
	}
	predict := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := dsx(t, append([]string{"predict", "--model", mp, "--test", xp, "--test-labels", yp, "--device", "cpu", "--top", strconv.Itoa(K), "--proba"}, args...)...)
		if code != 0 {
			t.Fatalf("predict %v: exit %d: %s", args, code, stderr)
		}
		return stdout
	}

	recs, err := csv.NewReader(strings.NewReader(predict())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.Join(recs[0], ","); h != "row,predicted,class,label,top1,top1_class,top1_p,top2,top2_class,top2_p,p_0,p_1,p_2,p_3" || len(recs) != rows+1 {
		t.Fatalf("CSV header %s, %d lines", h, len(recs))
	}
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	for i, r := range recs[1:] {
		var top []int
		var topP, proba []float64
		for k := range K {
			c, _ := strconv.Atoi(r[4+3*k])
			top, topP = append(top, c), append(topP, num(r[6+3*k]))
		}
		for c := range T {
			proba = append(proba, num(r[4+3*K+c]))
		}
		want("CSV", i, top, topP, proba)
	}

	jsonPath := filepath.Join(dir, "p.json")
	predict("--out", jsonPath)
	for _, src := range []string{predict("--json"), string(must(os.ReadFile(jsonPath)))} {
		var rs []jsonRow
		if err := json.Unmarshal([]byte(src), &rs); err != nil || len(rs) != rows {
			t.Fatalf("JSON: %d rows, %v", len(rs), err)
		}
		for i, r := range rs {
			var top []int
			var topP []float64
			for _, tp := range r.Top {
				top, topP = append(top, tp.Class), append(topP, tp.P)
			}
			want("JSON", i, top, topP, r.Proba)
		}
	}

	npz := filepath.Join(dir, "p.npz")
	predict("--out", npz)
	arrays := readNPZ(t, npz)
	for name, w := range map[string]string{"predicted": "<i8 [40]", "label": "<i8 [40]", "top": "<i8 [40 2]", "top_p": "<f4 [40 2]", "proba": "<f4 [40 4]"} {
		a, ok := arrays[name]
		if got := a.descr + " " + fmtInts(a.shape); !ok || got != w {
			t.Errorf(".npz member %s: %q (present %v), want %s", name, got, ok, w)
		}
	}
	if len(arrays) != 5 {
		t.Errorf(".npz members %v, want predicted, label, top, top_p, proba", arrays)
	}
	for i := range rows {
		top := []int{int(i64(arrays["top"].raw, 2*i)), int(i64(arrays["top"].raw, 2*i+1))}
		topP := []float64{f32(arrays["top_p"].raw, 2*i), f32(arrays["top_p"].raw, 2*i+1)}
		var proba []float64
		for c := range T {
			proba = append(proba, f32(arrays["proba"].raw, i*T+c))
		}
		want(".npz", i, top, topP, proba)
		if i64(arrays["predicted"].raw, i) != int64(top[0]) || i64(arrays["label"].raw, i) != y[i] {
			t.Fatalf(".npz row %d: predicted %d, label %d; want %d, %d", i, i64(arrays["predicted"].raw, i), i64(arrays["label"].raw, i), top[0], y[i])
		}
	}
	// numpy reads it as np.savez's: the arrays by name.
	if _, err := exec.LookPath(python); err == nil && exec.Command(python, "-c", "import numpy").Run() == nil {
		out, err := exec.Command(python, "-c", `import sys, numpy as np
z = np.load(sys.argv[1])
print(sorted(z.files), z["proba"].shape, z["top"].dtype, bool(np.allclose(z["proba"].sum(axis=1), 1, atol=1e-5)),
      bool((np.take_along_axis(z["proba"], z["top"], 1) == z["top_p"]).all()), bool((z["top"][:, 0] == z["predicted"]).all()))`, npz).CombinedOutput()
		if w := "['label', 'predicted', 'proba', 'top', 'top_p'] (40, 4) int64 True True True"; err != nil || strings.TrimSpace(string(out)) != w {
			t.Errorf("numpy on the .npz: %v\n%s\nwant %s", err, out, w)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", filepath.Join(dir, "p.npy"), "--top", "2", "--proba"}, "a .npy file holds one array: the top-K classes (--top K) or the probabilities (--proba), not both; --out FILE.npz holds both"},
		{[]string{"--top", "11"}, "--top 11: the model has 4 classes"},
		{[]string{"--out", filepath.Join(dir, "p.txt")}, ".csv, .npy, .npz or .json"},
	} {
		code, stdout, stderr := dsx(t, append([]string{"predict", "--model", mp, "--test", xp}, c.args...)...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "device") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("predict %v: exit %d, stdout %q, stderr %q; want exit 2 and one line saying %q, no device line", c.args, code, stdout, stderr, c.want)
		}
	}
}

type npyArray struct {
	descr string
	shape []int
	raw   []byte
}

// readNPZ reads every member of an .npz archive.
func readNPZ(t *testing.T, path string) map[string]npyArray {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]npyArray{}
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: member %s compressed (method %d); np.savez stores", path, f.Name, f.Method)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc) // checks the CRC
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		p := filepath.Join(t.TempDir(), f.Name)
		os.WriteFile(p, b, 0o644)
		d, s, raw := readNPY(t, p)
		out[strings.TrimSuffix(f.Name, ".npy")] = npyArray{d, s, raw}
	}
	return out
}

func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func i64(raw []byte, i int) int64 { return int64(binary.LittleEndian.Uint64(raw[8*i:])) }
func f32(raw []byte, i int) float64 {
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
}
