package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"dsx/internal/atomicfile"
	"dsx/internal/quote"
	"dsx/internal/rowmath"
	"dsx/model"
	"dsx/train"
)

const predictHelp = `Predict the class of every row of a data set, labelled or not: a CSV of
features only (as many columns as the model has features), .npy or
safetensors features without labels, or any labelled set. A .npy or
safetensors array of shape (rows, d1, d2, ...) is read as rows of
d1·d2·... features, as IDX images are. Features are scaled as in
training. Output goes to stdout, or to --out FILE (written atomically) in
the format its extension names. --top K adds the K most probable classes
with their probabilities, best first (K ≤ T); --proba adds the probability
of every class, whether or not --top is given:

CSV (stdout, or --out F.csv), a header line, then one line per row:
  row,predicted,class[,label]          class: the class name (or number);
                                       label: only when the data have labels
  --top K adds  top1,top1_class,top1_p,...,topK,topK_class,topK_p
  --proba adds  p_0,...,p_T-1          (after the top-K columns)
JSON (--json, or --out F.json): an array of {"row", "predicted", "class",
  "label", "top": [{"class", "name", "p"}, ...K], "proba": [...T]}, "label"
  only with labels, "top" only with --top, "proba" only with --proba.
.npy (--out F.npy, one array, as np.load returns it): int64 predicted
  classes, shape (rows,); with --top K the top-K classes, int64 (rows, K),
  best first; with --proba the probabilities, float32 (rows, T). --top and
  --proba together need several arrays: use .npz.
.npz (--out F.npz, as np.savez writes; np.load(F) gives each array by
  name): "predicted" int64 (rows,), "label" int64 (rows,) with labels,
  "top" int64 (rows, K) and "top_p" float32 (rows, K) with --top K,
  "proba" float32 (rows, T) with --proba.`

// predOpts say what a prediction row holds.
type predOpts struct {
	proba    bool
	top      int // 0: no top-K columns
	T        int
	names    []string
	labelled bool
}

func (o *predOpts) name(c int) string {
	if c < len(o.names) {
		return o.names[c]
	}
	return strconv.Itoa(c)
}

// predWriter writes predictions in one format.
type predWriter interface {
	// row writes one row: its index, label (-1 without), the classes in
	// order of probability (at least the best) and every probability.
	row(i int, label int32, order []int, p []float64) error
	close() error
}

func cmdPredict(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("predict", predictHelp, stdout)
	var mf modelFlags
	mf.register(fs.FlagSet)
	proba := fs.Bool("proba", false, "write class probabilities")
	top := fs.Int("top", 0, "write the `K` most probable classes, best first; K at most the model's T (default 0: no top-K columns)")
	out := fs.String("out", "", "write to `file` (.csv, .npy or .json), atomically, instead of stdout")
	asJSON := fs.Bool("json", false, "print a JSON array instead of CSV")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := mf.check(); err != nil {
		return err
	}
	if *top < 0 {
		return usageErr("--top %d: want K ≥ 1 (or 0: no top-K columns)", *top)
	}
	format := "csv"
	if *asJSON {
		format = "json"
	}
	if *out != "" {
		if *asJSON {
			return usageErr("--json prints to stdout; for a JSON file give --out FILE.json")
		}
		switch ext := strings.ToLower(filepath.Ext(*out)); ext {
		case ".csv", ".npy", ".npz", ".json":
			format = ext[1:]
		default:
			return usageErr("--out %s: the extension says the format: .csv, .npy, .npz or .json", quote.Value(*out))
		}
		if format == "npy" && *proba && *top > 0 {
			return usageErr("--out %s: a .npy file holds one array: the top-K classes (--top K) or the probabilities (--proba), not both; --out FILE.npz holds both (arrays top, top_p and proba), as do .csv and .json", quote.Value(*out))
		}
		if err := checkNotInput("--out", *out, append(mf.df.inputs(), *mf.model)...); err != nil {
			return err
		}
		if err := atomicfile.Check(*out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	r, err := mf.open(true, func(m *model.Model) error {
		if *top > m.T {
			return usageErr("--top %d: the model has %d classes", *top, m.T)
		}
		return nil
	}, stderr)
	if err != nil {
		return err
	}
	defer r.close()
	o := predOpts{proba: *proba, top: *top, T: r.m.T, names: r.m.Classes, labelled: r.test.Labelled()}
	correct := 0
	emit := func(w io.Writer) error {
		pw, err := newPredWriter(format, w, &o, r.test.Rows)
		if err != nil {
			return err
		}
		p := make([]float64, o.T)
		order := make([]int, o.T)
		err = train.ForBatches(r.l, r.test, 0, r.test.Rows, r.m.ScaleInputs, func(start, n int, z []float64, labels []int32) error {
			for i := 0; i < n; i++ {
				softmax(z[i*o.T:(i+1)*o.T], p)
				k := rank(p, order, max(o.top, 1))
				label := int32(-1)
				if labels != nil {
					label = labels[i]
					if int(label) == k[0] {
						correct++
					}
				}
				if err := pw.row(start+i, label, k, p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return pw.close()
	}
	if *out != "" {
		err = atomicfile.Write(*out, emit)
	} else {
		bw := bufio.NewWriterSize(stdout, 1<<16)
		if err = emit(bw); err == nil {
			err = bw.Flush()
		}
	}
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("dsx: predicted %d rows", r.test.Rows)
	if *out != "" {
		msg += " into " + *out
	}
	if o.labelled {
		msg += fmt.Sprintf(" (accuracy %.4f against the labels)", float64(correct)/float64(r.test.Rows))
	}
	fmt.Fprintln(stderr, msg)
	return nil
}

// softmax writes the probabilities of logits z into p, in float64.
func softmax(z, p []float64) {
	m := z[rowmath.Argmax(z)]
	sum := 0.0
	for c, v := range z {
		p[c] = math.Exp(v - m)
		sum += p[c]
	}
	for c := range p {
		p[c] /= sum
	}
}

// rank returns the k most probable classes, best first (ties: the lower
// class first, so that the best is numpy's argmax), in order's storage: a
// running top-k list, O(T·k) at worst and O(T) typically.
func rank(p []float64, order []int, k int) []int {
	top := order[:0]
	for c, v := range p {
		if len(top) == k && v <= p[top[k-1]] {
			continue
		}
		if len(top) < k {
			top = append(top, c)
		}
		j := len(top) - 1
		for j > 0 && v > p[top[j-1]] {
			top[j] = top[j-1]
			j--
		}
		top[j] = c
	}
	return top
}

func newPredWriter(format string, w io.Writer, o *predOpts, rows int) (predWriter, error) {
	switch format {
	case "npy":
		return newNPYPred(w, o, rows)
	case "npz":
		return newNPZPred(w, o, rows)
	case "json":
		return &jsonPred{w: w, o: o}, nil
	}
	cw := csv.NewWriter(w)
	head := []string{"row", "predicted", "class"}
	if o.labelled {
		head = append(head, "label")
	}
	for k := 1; k <= o.top; k++ {
		head = append(head, fmt.Sprintf("top%d", k), fmt.Sprintf("top%d_class", k), fmt.Sprintf("top%d_p", k))
	}
	if o.proba {
		for c := 0; c < o.T; c++ {
			head = append(head, "p_"+strconv.Itoa(c))
		}
	}
	return &csvPred{w: cw, o: o, rec: make([]string, 0, len(head))}, cw.Write(head)
}

type csvPred struct {
	w   *csv.Writer
	o   *predOpts
	rec []string
}

func prob(p float64) string { return strconv.FormatFloat(p, 'g', 7, 64) }

func (c *csvPred) row(i int, label int32, order []int, p []float64) error {
	r := append(c.rec[:0], strconv.Itoa(i), strconv.Itoa(order[0]), c.o.name(order[0]))
	if c.o.labelled {
		r = append(r, strconv.Itoa(int(label)))
	}
	for _, k := range order[:c.o.top] {
		r = append(r, strconv.Itoa(k), c.o.name(k), prob(p[k]))
	}
	if c.o.proba {
		for _, v := range p {
			r = append(r, prob(v))
		}
	}
	c.rec = r
	return c.w.Write(r)
}

func (c *csvPred) close() error {
	c.w.Flush()
	return c.w.Error()
}

// jsonPred streams a JSON array, one object per line.
type jsonPred struct {
	w    io.Writer
	o    *predOpts
	rows int
}

type jsonTop struct {
	Class int     `json:"class"`
	Name  string  `json:"name"`
	P     float64 `json:"p"`
}

type jsonRow struct {
	Row       int       `json:"row"`
	Predicted int       `json:"predicted"`
	Class     string    `json:"class"`
	Label     *int32    `json:"label,omitempty"`
	Top       []jsonTop `json:"top,omitempty"`
	Proba     []float64 `json:"proba,omitempty"`
}

func (j *jsonPred) row(i int, label int32, order []int, p []float64) error {
	r := jsonRow{Row: i, Predicted: order[0], Class: j.o.name(order[0])}
	if j.o.labelled {
		r.Label = &label
	}
	for _, k := range order[:j.o.top] {
		r.Top = append(r.Top, jsonTop{Class: k, Name: j.o.name(k), P: p[k]})
	}
	if j.o.proba {
		r.Proba = p
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	sep := ",\n"
	if j.rows == 0 {
		sep = "[\n"
	}
	j.rows++
	_, err = fmt.Fprintf(j.w, "%s%s", sep, b)
	return err
}

func (j *jsonPred) close() error {
	end := "\n]\n"
	if j.rows == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}
