package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"dsx/data"
)

// dataFlags are the flags every command that reads data shares.
type dataFlags struct {
	dir, train, test        string
	trainLabels, testLabels string
	// Tensor names, for safetensors files only: featTensor and
	// labelsTensor name those of --train in train, of --test in eval and
	// predict; testFeatTensor and testLabelsTensor those of --test in train.
	featTensor, labelsTensor         string
	testFeatTensor, testLabelsTensor string
	withTrain                        bool
}

func (d *dataFlags) register(fs *flag.FlagSet, withTrain bool) {
	d.withTrain = withTrain
	feats, labels := strings.Join(data.DefaultFeaturesTensors, ", "), strings.Join(data.DefaultLabelsTensors, ", ")
	fs.StringVar(&d.dir, "data", "", "`folder` with the four (Fashion-)MNIST IDX files, gzipped or not (default: Debian's dataset-fashion-mnist)")
	if withTrain {
		fs.StringVar(&d.train, "train", "", "training data `file` instead of --data: CSV (label,f1,f2,...), .npy, safetensors or IDX images")
		fs.StringVar(&d.trainLabels, "train-labels", "", "labels `file` for --train when it holds none: .npy of integers or IDX labels")
		fs.StringVar(&d.test, "test", "", "test data `file` instead of --data: CSV, .npy, safetensors or IDX images (default: none; train without a test set)")
	} else {
		fs.StringVar(&d.test, "test", "", "data `file` instead of --data's test set: CSV, .npy, safetensors or IDX images")
	}
	fs.StringVar(&d.testLabels, "test-labels", "", "labels `file` for --test when it holds none: .npy of integers or IDX labels")
	if withTrain {
		fs.StringVar(&d.featTensor, "features-tensor", "", "`tensor` of a --train safetensors file holding the features (default: the first of "+feats+")")
		fs.StringVar(&d.labelsTensor, "labels-tensor", "", "`tensor` of a --train safetensors file holding the labels (default: the first of "+labels+")")
		fs.StringVar(&d.testFeatTensor, "test-features-tensor", "", "`tensor` of a --test safetensors file holding the features (default: --features-tensor's if the file has it, else the first of "+feats+")")
		fs.StringVar(&d.testLabelsTensor, "test-labels-tensor", "", "`tensor` of a --test safetensors file holding the labels (default: --labels-tensor's if the file has it, else the first of "+labels+")")
	} else {
		fs.StringVar(&d.featTensor, "features-tensor", "", "`tensor` of a --test safetensors file holding the features (default: the first of "+feats+")")
		fs.StringVar(&d.labelsTensor, "labels-tensor", "", "`tensor` of a --test safetensors file holding the labels (default: the first of "+labels+")")
	}
}

// check reports a bad combination of data flags before anything is read.
func (d *dataFlags) check() error {
	ownFile := "--test"
	if d.withTrain {
		ownFile = "--train"
	}
	switch {
	case d.dir != "" && (d.train != "" || d.test != ""):
		return usageErr("give either --data or --train/--test, not both")
	case d.withTrain && d.test != "" && d.train == "":
		return usageErr("--test without --train")
	case d.trainLabels != "" && d.train == "":
		return usageErr("--train-labels without --train")
	case d.testLabels != "" && d.test == "":
		return usageErr("--test-labels without --test")
	case (d.featTensor != "" || d.labelsTensor != "") && d.train == "" && d.test == "":
		return usageErr("--features-tensor and --labels-tensor name tensors of a %s safetensors file: give %s FILE", ownFile, ownFile)
	case (d.testFeatTensor != "" || d.testLabelsTensor != "") && d.test == "":
		return usageErr("--test-features-tensor and --test-labels-tensor name tensors of a --test safetensors file: give --test FILE")
	}
	return checkStreamsOnce(d.train, d.test, d.trainLabels, d.testLabels)
}

// loadOpts is what a command needs from its data.
type loadOpts struct {
	classes    int  // > 0: the number of classes; labels must be below it
	features   int  // > 0: the model's N
	unlabelled bool // data without labels are fine (predict)
}

// load returns the training and test sets: train is nil for commands
// without one, test nil for train without --test. Features are mapped from
// .npy and safetensors files where they can be (data.Options.Map): the
// caller closes both sets, and must not write their X. Progress is printed
// on long reads.
func (d *dataFlags) load(o loadOpts, stderr io.Writer) (train, test *data.Set, err error) {
	if d.train != "" || d.test != "" {
		// Each file is opened once, here, and read through that one
		// opening: a pipe or FIFO gives all its rows to the load, after
		// its header was peeked for the checks below.
		var trainIn, testIn *data.Input
		for _, p := range []struct {
			path string
			in   **data.Input
		}{{d.train, &trainIn}, {d.test, &testIn}} {
			if p.path == "" {
				continue
			}
			if *p.in, err = data.Open(p.path); err != nil {
				return nil, nil, err
			}
			defer (*p.in).Close()
		}
		opts := data.Options{Classes: o.classes, Features: o.features, Unlabelled: o.unlabelled, Map: true}
		testHint := labelsHint{"--test-labels", "--labels-tensor"}
		if d.withTrain {
			to := opts
			to.Labels, to.FeaturesTensor, to.LabelsTensor = d.trainLabels, d.featTensor, d.labelsTensor
			// Both headers before either body: a test file that cannot
			// match is found before the training file is read.
			n, err := trainIn.Features(to)
			if err != nil {
				return nil, nil, err
			}
			if testIn != nil {
				po := opts
				if po.FeaturesTensor, po.LabelsTensor, err = d.testTensors(testIn); err != nil {
					return nil, nil, err
				}
				po.Labels = d.testLabels
				m, err := testIn.Features(po)
				if err != nil {
					return nil, nil, err
				}
				if n > 0 && m > 0 && n != m {
					return nil, nil, fmt.Errorf("%w: training data %s has %d features, test data %s has %d", data.ErrFeatureCount, d.train, n, d.test, m)
				}
			}
			to.Features = n
			if train, err = loadFile(trainIn, to, labelsHint{"--train-labels", "--labels-tensor"}, stderr); err != nil {
				return nil, nil, err
			}
			if testIn == nil {
				return train, nil, nil
			}
			opts.Features = train.N
			if opts.FeaturesTensor, opts.LabelsTensor, err = d.testTensors(testIn); err != nil {
				train.Close()
				return nil, nil, err
			}
			testHint.tensor = "--test-labels-tensor"
		} else {
			opts.FeaturesTensor, opts.LabelsTensor = d.featTensor, d.labelsTensor
		}
		opts.Labels = d.testLabels
		if test, err = loadFile(testIn, opts, testHint, stderr); err != nil {
			train.Close()
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
	bar, prog := readingBar(stderr, dir)
	train, test, err = data.LoadDirOptions(dir, data.Options{Features: o.features, Classes: o.classes, Progress: prog})
	bar.clear()
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

// testTensors returns the tensor names for train's --test file: its own
// flags, else --features-tensor's and --labels-tensor's when the file is a
// safetensors file that holds them (a .npy file, or one whose tensors have
// the default names, takes none).
func (d *dataFlags) testTensors(testIn *data.Input) (feat, labels string, err error) {
	feat, labels = d.testFeatTensor, d.testLabelsTensor
	inheritFeat := feat == "" && d.featTensor != ""
	inheritLabels := labels == "" && d.labelsTensor != "" && d.testLabels == ""
	if !inheritFeat && !inheritLabels {
		return feat, labels, nil
	}
	names, err := testIn.TensorNames()
	if err != nil {
		return "", "", err
	}
	if inheritFeat && slices.Contains(names, d.featTensor) {
		feat = d.featTensor
	}
	if inheritLabels && slices.Contains(names, d.labelsTensor) {
		labels = d.labelsTensor
	}
	return feat, labels, nil
}

// labelsHint names the flags that give a file's labels.
type labelsHint struct{ file, tensor string }

// loadFile reads one data file, with a progress bar on a terminal and a
// line saying what was read.
func loadFile(in *data.Input, o data.Options, hint labelsHint, stderr io.Writer) (*data.Set, error) {
	path := in.Path()
	bar, prog := readingBar(stderr, path)
	o.Progress = prog
	s, err := in.Load(o)
	bar.clear()
	if err != nil {
		if errors.Is(err, data.ErrNoLabels) {
			if names, _ := in.TensorNames(); names != nil {
				return nil, fmt.Errorf("%w: name the labels tensor with %s NAME or give a labels file with %s FILE", err, hint.tensor, hint.file)
			}
			return nil, fmt.Errorf("%w: give it with %s FILE", err, hint.file)
		}
		return nil, classesHint(err)
	}
	fmt.Fprintf(stderr, "dsx: read %s\n", describe(s))
	return s, nil
}

// readingBar is a progress bar for reading what (a file or a folder) and
// the data.Options.Progress that draws it; clear it when done.
func readingBar(stderr io.Writer, what string) (*progress, func(done, total int64)) {
	bar := newProgress(stderr, 0)
	return bar, func(done, total int64) {
		bar.bytes(done, total, fmt.Sprintf("reading %s %.2f/%.2f GB", what, float64(done)/1e9, float64(total)/1e9))
	}
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
