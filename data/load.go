package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// MaxInferredClasses bounds the number of classes inferred from the labels
// (max label + 1) when the caller gives none: one stray large label must not
// make a model of millions of classes. Give [Options.Classes] to allow more.
const MaxInferredClasses = 100000

var (
	// ErrTooManyClasses is wrapped by the error for a label that would make
	// more than MaxInferredClasses classes when none were given.
	ErrTooManyClasses = errors.New("too many classes to infer")
	// ErrNoLabels is wrapped by the error for a features file without
	// labels where labels are needed. The message says where the labels
	// were looked for; the caller adds how to give them.
	ErrNoLabels = errors.New("no labels")
	// ErrFeatureCount is wrapped by the error for rows whose number of
	// features differs from Options.Features.
	ErrFeatureCount = errors.New("wrong number of features")
)

// Options say how [LoadFile] reads a data set.
type Options struct {
	// Labels is a separate labels file for features that hold none (.npy,
	// safetensors or IDX images): a .npy array of integers of shape (rows,)
	// or (rows, 1), or an IDX labels file.
	Labels string
	// FeaturesTensor and LabelsTensor name the tensors of a safetensors
	// file; "" tries DefaultFeaturesTensors and DefaultLabelsTensors in
	// order.
	FeaturesTensor, LabelsTensor string
	// Classes > 0 is the number of classes: every label must be below it.
	// 0 infers max label + 1, at most MaxInferredClasses.
	Classes int
	// Features > 0 is the number of features per row the caller expects
	// (a model's N). It is checked from the header, before the data are
	// read, and tells a CSV of features only (Features columns) from one
	// with labels (Features+1 columns).
	Features int
	// Unlabelled accepts a file without labels: the set's Y is then nil.
	Unlabelled bool
	// Map lets float32 features of a .npy or safetensors file (in the
	// host's byte order, as numpy writes them) be the file's own pages,
	// mapped copy-on-write, instead of a copy in memory the set owns: no
	// copy, no fresh memory to fault in, the features stored once (in the
	// page cache), every value still checked as it is read. The caller
	// must then [Set.Close] the set when done with X (or leave it to the
	// process's exit), and should not write X: each written page is copied
	// (the write stays private). Another program rewriting the file while
	// X is in use changes what X reads; truncating it makes [Set.Batch] and
	// [FitScaler] return an error naming the file (read X through them, not
	// directly, or a cut file's pages fault). Elsewhere, and for other types, Map reads as
	// without it; Stats.Mapped says which happened.
	Map bool
	// Progress, when not nil, is called now and then with the bytes read
	// and the total: of the files, or of the uncompressed bodies of IDX
	// files (LoadDirOptions: all four).
	Progress func(done, total int64)
}

// LoadFile reads a data set from a file of any format dsx knows, told by
// its content, not its name:
//
//   - .npy (numpy.save): features of shape (rows, N) (or (rows, d1, d2,
//     ...)), float32, float64 or integers, C order; labels from
//     Options.Labels.
//   - safetensors: a features tensor and a labels tensor, named by Options
//     or found under the default names.
//   - IDX images (MNIST), gzipped or not, with an IDX labels file in
//     Options.Labels.
//   - CSV of "label,f1,f2,..." rows, or of features only (see
//     Options.Features), gzipped or not.
//
// Every header is checked against the file's real size (a gzipped IDX
// header against the most its compressed size can hold), a pair's headers
// against each other, and the features against Options.Features (for a
// CSV, the first line's columns), before the data are read, so that
// memory follows what the file holds, not what a header claims. Float32 data are
// read straight into the set's X; nothing is held twice. The set's Stats
// say what was read, skipped and how long it took.
func LoadFile(path string, o Options) (*Set, error) {
	start := time.Now()
	format, err := sniff(path)
	if err != nil {
		return nil, err
	}
	var s *Set
	switch format {
	case "csv":
		s, err = loadCSVFile(path, o)
	case "idx":
		s, err = loadIDXFile(path, o)
	default:
		s, err = loadArrays(path, format, o)
	}
	if err != nil {
		return nil, err
	}
	if o.Features > 0 && s.N != o.Features {
		s.Close()
		return nil, fmt.Errorf("file %s: %w: rows have %d features, want %d", path, ErrFeatureCount, s.N, o.Features)
	}
	if err := s.SetClasses(o.Classes); err != nil {
		s.Close()
		return nil, err
	}
	s.Stats.LoadSeconds = time.Since(start).Seconds()
	return s, nil
}

// sniff tells a file's format from its first bytes.
func sniff(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", fmt.Errorf("file %s: is a directory (--data takes a folder of IDX files)", path)
	}
	var head [16]byte
	n, _ := io.ReadFull(f, head[:])
	b := head[:n]
	switch {
	case bytes.HasPrefix(b, []byte(npyMagic)):
		return "npy", nil
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "", fmt.Errorf("file %s: a zip archive (.npz?): save each array with np.save (features.npy, labels.npy)", path)
	case n >= 9 && b[8] == '{' && binary.LittleEndian.Uint64(b) <= uint64(st.Size()-8):
		return "safetensors", nil
	}
	// Compressed or not, IDX and CSV are read through open.
	r, err := open(path)
	if err != nil {
		return "", err
	}
	defer r.Close()
	n, _ = io.ReadFull(r, head[:])
	b = head[:n]
	switch {
	case r.gz != nil && (bytes.HasPrefix(b, []byte(npyMagic)) || n >= 9 && b[8] == '{'):
		return "", fmt.Errorf("file %s: a gzip-compressed .npy or safetensors file: decompress it first (dsx reads them at disk speed, uncompressed)", path)
	case n >= 4 && binary.BigEndian.Uint32(b) == idxImageMagic:
		return "idx", nil
	case n >= 4 && binary.BigEndian.Uint32(b) == idxLabelMagic:
		return "", fmt.Errorf("file %s: an IDX labels file: give the IDX images as the data and this as their labels file", path)
	}
	return "csv", nil
}

func loadCSVFile(path string, o Options) (*Set, error) {
	if o.Labels != "" {
		return nil, fmt.Errorf("file %s: CSV rows carry their label in the first column; a separate labels file (%s) goes with .npy, safetensors or IDX data", path, o.Labels)
	}
	labelled := true
	if o.Features > 0 {
		cols, err := csvColumns(path)
		if err != nil {
			return nil, err
		}
		switch {
		case cols == o.Features+1:
		case cols == o.Features && o.Unlabelled:
			labelled = false
		case o.Unlabelled:
			return nil, fmt.Errorf("file %s: %w: rows have %d columns: want %d features, or a label and %d features", path, ErrFeatureCount, cols, o.Features, o.Features)
		default:
			return nil, fmt.Errorf("file %s: %w: rows have %d columns: want a label and %d features", path, ErrFeatureCount, cols, o.Features)
		}
	}
	if labelled && o.Classes > 0 {
		return loadCSV(path, o.Classes, true, o.Progress)
	}
	return loadCSV(path, 0, labelled, o.Progress)
}

// csvColumns counts the fields of the first line that is not blank,
// holding no more than that line and no field longer than maxCSVField.
func csvColumns(path string) (int, error) {
	r, err := open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	lr := &lineReader{br: r.Reader.(*bufio.Reader), r: r} // open always buffers
	for {
		line, err := lr.next()
		if len(bytes.TrimSpace(line)) > 0 {
			return bytes.Count(line, []byte(",")) + 1, nil
		}
		switch {
		case err == io.EOF:
			return 0, fmt.Errorf("%s: empty set: no data rows", path)
		case err != nil:
			return 0, err
		}
	}
}

func loadIDXFile(path string, o Options) (*Set, error) {
	if o.Labels == "" && !o.Unlabelled {
		return nil, fmt.Errorf("file %s: %w: IDX images keep their labels in a separate IDX labels file", path, ErrNoLabels)
	}
	p, err := openIDXPair(path, o.Labels)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if o.Features > 0 && p.features() != o.Features {
		return nil, fmt.Errorf("file %s: %w: images of %d×%d have %d features, want %d",
			path, ErrFeatureCount, p.img.dims[1], p.img.dims[2], p.features(), o.Features)
	}
	reportTo(o.Progress, p)
	return p.read()
}

// PeekFeatures returns the number of features per row of the data that
// LoadFile(path, o) would read, from the headers alone: nothing is
// allocated by what they claim. For a CSV file it is the first line's
// number of fields less one for the label, or 0 (unknown) with
// o.Unlabelled, where the file may hold features only. Callers check two
// files against each other with it before reading either.
func PeekFeatures(path string, o Options) (int, error) {
	format, err := sniff(path)
	if err != nil {
		return 0, err
	}
	switch format {
	case "csv":
		if o.Unlabelled {
			return 0, nil
		}
		cols, err := csvColumns(path)
		return cols - 1, err
	case "idx":
		f, err := openIDXImages(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		return f.dims[1] * f.dims[2], nil
	}
	f, size, err := openRegular(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var feat *array
	if format == "npy" {
		feat, err = openNPY(f, path, size)
	} else {
		var st *safetensorsFile
		if st, err = openSafetensors(f, path, size); err != nil {
			return 0, err
		}
		var ok bool
		if feat, ok, err = st.find(o.FeaturesTensor, DefaultFeaturesTensors); err == nil && !ok {
			err = st.missing("features", o.FeaturesTensor, DefaultFeaturesTensors)
		}
	}
	if err != nil {
		return 0, err
	}
	_, n, err := feat.matrix()
	return n, err
}

// loadArrays reads a .npy or safetensors features file and its labels.
// Headers first: shapes, row counts and the feature count are checked
// before any data are read.
func loadArrays(path, format string, o Options) (s *Set, err error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var feat, lab *array
	switch format {
	case "npy":
		if o.FeaturesTensor != "" || o.LabelsTensor != "" {
			return nil, fmt.Errorf("file %s: a .npy file holds one array: tensor names are for safetensors files", path)
		}
		if feat, err = openNPY(f, path, size); err != nil {
			return nil, err
		}
	case "safetensors":
		st, err := openSafetensors(f, path, size)
		if err != nil {
			return nil, err
		}
		var ok bool
		if feat, ok, err = st.find(o.FeaturesTensor, DefaultFeaturesTensors); err != nil {
			return nil, err
		} else if !ok {
			return nil, st.missing("features", o.FeaturesTensor, DefaultFeaturesTensors)
		}
		if o.Labels != "" && o.LabelsTensor != "" {
			return nil, fmt.Errorf("file %s: labels come either from a tensor (%s) or from a labels file (%s), not both", path, o.LabelsTensor, o.Labels)
		}
		if o.Labels == "" {
			if lab, ok, err = st.find(o.LabelsTensor, DefaultLabelsTensors); err != nil {
				return nil, err
			} else if !ok && o.LabelsTensor != "" {
				return nil, st.missing("labels", o.LabelsTensor, nil)
			}
		}
	}
	rows, n, err := feat.matrix()
	if err != nil {
		return nil, err
	}
	if o.Features > 0 && n != o.Features {
		return nil, fmt.Errorf("%s: %w: shape %s: %d features per row, want %d", feat.where(), ErrFeatureCount, feat.shapeString(), n, o.Features)
	}
	s = &Set{Rows: rows, N: n, Source: path, Stats: LoadStats{Format: format, RowsRead: rows, Bytes: feat.size()}}
	defer func() {
		if err != nil {
			s.Close() // a mapping made for the features
		}
	}()

	// Labels: a tensor of the same file, or a separate file.
	var idxLab *idxFile
	if o.Labels != "" {
		s.Source += " + " + o.Labels
		lf, lsize, err := openRegular(o.Labels)
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		var magic [6]byte
		if n, _ := lf.ReadAt(magic[:], 0); string(magic[:n]) == npyMagic {
			if lab, err = openNPY(lf, o.Labels, lsize); err != nil {
				return nil, err
			}
		} else if idxLab, err = openIDXLabels(o.Labels); err != nil {
			// Not a .npy file; IDX labels are the other kind accepted.
			return nil, fmt.Errorf("labels: want a .npy array of integers or an IDX labels file: %w", err)
		} else {
			defer idxLab.Close()
		}
	}
	labelRows := -1
	switch {
	case lab != nil:
		if labelRows, err = lab.labelRows(); err != nil {
			return nil, err
		}
		s.Stats.Bytes += lab.size()
	case idxLab != nil:
		labelRows = idxLab.dims[0]
		s.Stats.Bytes += idxLab.size
	case !o.Unlabelled && format == "npy":
		return nil, fmt.Errorf("file %s: %w: a .npy file holds one array, the features; the labels come in a second file (a .npy array of integers or IDX labels)", path, ErrNoLabels)
	case !o.Unlabelled:
		return nil, fmt.Errorf("file %s: %w: no labels tensor (looked for %s) and no labels file", path, ErrNoLabels, strings.Join(DefaultLabelsTensors, ", "))
	}
	if labelRows >= 0 && labelRows != rows {
		lname := "labels file " + o.Labels
		if lab != nil && o.Labels == "" {
			lname = lab.what
		}
		return nil, fmt.Errorf("%s has %d rows but %s has %d labels: count mismatch", feat.where(), rows, lname, labelRows)
	}

	// Bodies, at most once each.
	total := s.Stats.Bytes
	var prog func(int64)
	if o.Progress != nil {
		prog = func(done int64) { o.Progress(done, total) }
	}
	if !o.Map || !feat.mapFeatures(s) {
		s.X = make([]float32, feat.count)
	}
	if err := feat.readFeatures(s.X, n, prog); err != nil {
		return nil, err
	}
	switch {
	case lab != nil:
		s.Y = make([]int32, rows)
		base := feat.size()
		var lprog func(int64)
		if o.Progress != nil {
			lprog = func(done int64) { o.Progress(base+done, total) }
		}
		maxLabel, err := lab.readLabels(s.Y, o.Classes, lprog)
		if err != nil {
			return nil, err
		}
		s.Classes = int(maxLabel) + 1
	case idxLab != nil:
		idxLabels, err := idxLab.bytes()
		if err != nil {
			return nil, err
		}
		s.Y = make([]int32, rows)
		for i, l := range idxLabels {
			s.Y[i] = int32(l)
			s.Classes = max(s.Classes, int(l)+1)
		}
	}
	if err := s.validateLabels(); err != nil {
		return nil, err
	}
	return s, nil
}

func openRegular(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("file %s: not a regular file", path)
	}
	return f, st.Size(), nil
}

// SetClasses applies a given number of classes (given > 0: every label
// must be below it) or, with given 0, checks that the inferred one is at
// most MaxInferredClasses; the error then wraps ErrTooManyClasses and names
// the first row whose label is too large. A set without labels passes.
func (s *Set) SetClasses(given int) error {
	if !s.Labelled() {
		return nil
	}
	limit := MaxInferredClasses
	if given > 0 {
		limit = given
	}
	for i, y := range s.Y {
		if int(y) < limit {
			continue
		}
		if given > 0 {
			return fmt.Errorf("%s: row %d: label %d out of range [0, %d)", s.name(), i, y, given)
		}
		return fmt.Errorf("%s: row %d: label %d would make %d classes: %w (more than %d without a class count)",
			s.name(), i, y, int(y)+1, ErrTooManyClasses, MaxInferredClasses)
	}
	if given > 0 {
		s.Classes = given
	}
	return nil
}
