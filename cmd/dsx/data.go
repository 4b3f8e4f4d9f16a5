package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"dsx/data"
	"dsx/internal/quote"
)

// dataFlags are the flags every command that reads data shares.
type dataFlags struct {
	dir, train, test         string
	trainLabels, testLabels  string
	featTensor, labelsTensor string
	withTrain                bool
}

func (d *dataFlags) register(fs *flag.FlagSet, withTrain bool) {
	d.withTrain = withTrain
	fs.StringVar(&d.dir, "data", "", "`folder` with the four (Fashion-)MNIST IDX files, gzipped or not (default: Debian's dataset-fashion-mnist)")
	if withTrain {
		fs.StringVar(&d.train, "train", "", "training data `file` instead of --data: CSV (label,f1,f2,...), .npy, safetensors or IDX images")
		fs.StringVar(&d.trainLabels, "train-labels", "", "labels `file` for --train when it holds none: .npy of integers or IDX labels")
	}
	fs.StringVar(&d.test, "test", "", "test data `file` instead of --data: CSV, .npy, safetensors or IDX images")
	fs.StringVar(&d.testLabels, "test-labels", "", "labels `file` for --test when it holds none: .npy of integers or IDX labels")
	fs.StringVar(&d.featTensor, "features-tensor", "", "safetensors tensor holding the features (default: the first of "+strings.Join(data.DefaultFeaturesTensors, ", ")+")")
	fs.StringVar(&d.labelsTensor, "labels-tensor", "", "safetensors tensor holding the labels (default: the first of "+strings.Join(data.DefaultLabelsTensors, ", ")+")")
}

// check reports a bad combination of data flags before anything is read.
func (d *dataFlags) check() error {
	switch {
	case d.dir != "" && (d.train != "" || d.test != ""):
		return usageErr("give either --data or --train/--test, not both")
	case d.withTrain && d.test != "" && d.train == "":
		return usageErr("--test without --train")
	case d.train != "" && d.test == "":
		return usageErr("--train without --test")
	case d.trainLabels != "" && d.train == "":
		return usageErr("--train-labels without --train")
	case d.testLabels != "" && d.test == "":
		return usageErr("--test-labels without --test")
	}
	return nil
}

// loadOpts is what a command needs from its data.
type loadOpts struct {
	classes    int  // > 0: the number of classes; labels must be below it
	features   int  // > 0: the model's N
	unlabelled bool // data without labels are fine (predict)
}

// load returns the training and test sets (train is nil without --train
// or for commands without one), printing progress on long reads.
func (d *dataFlags) load(o loadOpts, stderr io.Writer) (train, test *data.Set, err error) {
	if d.train != "" || d.test != "" {
		opts := data.Options{Classes: o.classes, Features: o.features, Unlabelled: o.unlabelled,
			FeaturesTensor: d.featTensor, LabelsTensor: d.labelsTensor}
		if d.withTrain {
			to := opts
			to.Labels = d.trainLabels
			// Both headers before either body: a test file that cannot
			// match is found before the training file is read.
			n, err := data.PeekFeatures(d.train, to)
			if err != nil {
				return nil, nil, err
			}
			m, err := data.PeekFeatures(d.test, opts)
			if err != nil {
				return nil, nil, err
			}
			if n > 0 && m > 0 && n != m {
				return nil, nil, fmt.Errorf("%w: training data %s has %d features, test data %s has %d", data.ErrFeatureCount, d.train, n, d.test, m)
			}
			to.Features = n
			if train, err = loadFile(d.train, to, "--train-labels", stderr); err != nil {
				return nil, nil, err
			}
			opts.Features = train.N
		}
		opts.Labels = d.testLabels
		if test, err = loadFile(d.test, opts, "--test-labels", stderr); err != nil {
			return nil, nil, err
		}
		return train, test, nil
	}
	dir := d.dir
	if dir == "" {
		for _, c := range data.DefaultDirs() {
			if _, err := os.Stat(c); err == nil {
				dir = c
				break
			}
		}
		if dir == "" {
			return nil, nil, fmt.Errorf("no data: give --data DIR or --train/--test FILE, or install Debian's dataset-fashion-mnist (looked in %s)", strings.Join(data.DefaultDirs(), ", "))
		}
	}
	train, test, err = data.LoadDirOptions(dir, data.Options{Features: o.features, Classes: o.classes})
	if err != nil {
		return nil, nil, classesHint(err)
	}
	for _, s := range []*data.Set{train, test} {
		if s == test || d.withTrain {
			fmt.Fprintf(stderr, "dsx: read %s\n", describe(s))
		}
	}
	if !d.withTrain {
		train = nil
	}
	return train, test, nil
}

// loadFile reads one data file, with a progress bar on a terminal and a
// line saying what was read.
func loadFile(path string, o data.Options, labelsFlag string, stderr io.Writer) (*data.Set, error) {
	bar := newProgress(stderr, 0)
	o.Progress = func(done, total int64) {
		bar.bytes(done, total, fmt.Sprintf("reading %s %.2f/%.2f GB", path, float64(done)/1e9, float64(total)/1e9))
	}
	s, err := data.LoadFile(path, o)
	bar.clear()
	if err != nil {
		if errors.Is(err, data.ErrNoLabels) {
			return nil, fmt.Errorf("%w: give it with %s FILE", err, labelsFlag)
		}
		return nil, classesHint(err)
	}
	fmt.Fprintf(stderr, "dsx: read %s\n", describe(s))
	return s, nil
}

// classesHint adds how to raise the bound on inferred classes.
func classesHint(err error) error {
	if errors.Is(err, data.ErrTooManyClasses) {
		return fmt.Errorf("%w; if the labels are right, give --classes T (T above the largest label) to allow it", err)
	}
	return err
}

// describe is one line about a loaded set.
func describe(s *data.Set) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d rows × %d features", s.Source, s.Rows, s.N)
	if s.Labelled() {
		fmt.Fprintf(&b, ", %d classes", s.Classes)
	} else {
		b.WriteString(", no labels")
	}
	for _, sk := range s.Stats.Skipped {
		fmt.Fprintf(&b, ", skipped %d %s", sk.Rows, sk.Reason)
	}
	fmt.Fprintf(&b, " (%s, %.2f s)", s.Stats.Format, s.Stats.LoadSeconds)
	return b.String()
}

// dataReport is a loaded set in the JSON summaries.
type dataReport struct {
	Source string `json:"source"`
	data.LoadStats
}

func reportOf(s *data.Set) *dataReport {
	if s == nil {
		return nil
	}
	r := &dataReport{Source: s.Source, LoadStats: s.Stats}
	if r.Skipped == nil {
		r.Skipped = []data.Skipped{}
	}
	return r
}

// readClassNames reads one class name per line; blank lines at the end are
// ignored, blank or repeated names elsewhere are errors.
func readClassNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		names = append(names, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for len(names) > 0 && names[len(names)-1] == "" {
		names = names[:len(names)-1]
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no class names (want one per line)", path)
	}
	for i, n := range names {
		if !utf8.ValidString(n) {
			return nil, fmt.Errorf("%s:%d: class name %s is not valid UTF-8 (the model keeps names as JSON text)", path, i+1, quote.Value(n))
		}
		if n == "" {
			return nil, fmt.Errorf("%s:%d: blank class name", path, i+1)
		}
		if j, ok := seen[n]; ok {
			return nil, fmt.Errorf("%s:%d: class name %s repeats line %d", path, i+1, quote.Value(n), j+1)
		}
		seen[n] = i
	}
	return names, nil
}
