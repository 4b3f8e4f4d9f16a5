package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"dsx/internal/quote"
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
	in, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return in.Load(o)
}

// Load reads the data set, as [LoadFile] does, from the opened input. A
// stream is read once: a second Load of it is an error.
func (in *Input) Load(o Options) (*Set, error) {
	start := time.Now()
	format, err := in.sniff()
	if err != nil {
		return nil, err
	}
	var s *Set
	switch format {
	case "csv":
		s, err = loadCSVInput(in, o)
	case "idx":
		s, err = loadIDXInput(in, o)
	default:
		s, err = loadArrays(in, format, o)
	}
	if err != nil {
		return nil, err
	}
	if o.Features > 0 && s.N != o.Features {
		s.Close()
		return nil, fmt.Errorf("file %s: %w: rows have %d features, want %d", in.path, ErrFeatureCount, s.N, o.Features)
	}
	if err := s.SetClasses(o.Classes); err != nil {
		s.Close()
		return nil, err
	}
	s.Stats.LoadSeconds = time.Since(start).Seconds()
	return s, nil
}

// sniff tells the input's format from its first bytes, peeked (a stream
// loses nothing), and names what it cannot read.
func (in *Input) sniff() (string, error) {
	if in.format != "" {
		return in.format, nil
	}
	r, err := in.peek()
	if err != nil {
		return "", err
	}
	if in.regular {
		defer r.Close()
	}
	raw, _ := r.raw.Peek(16)
	format, err := sniffBytes(in.path, raw, in.size, in.regular, false)
	if err != nil || format != "" {
		in.format = format
		return format, err
	}
	b := raw
	if r.gz != nil {
		if b, err = r.buffered().Peek(16); err != nil && err != io.EOF {
			return "", r.wrap(err)
		}
	}
	if format, err = sniffBytes(in.path, b, 0, false, r.gz != nil); err != nil {
		return "", err
	}
	if format == "" {
		format = "csv"
	}
	in.format = format
	return format, nil
}

// sniffBytes tells a format from a file's first bytes b (decompressed
// when gz): "npy", "safetensors" or "idx", "" for text (CSV), or an error
// naming a format dsx does not read or a header that is corrupt. size is
// a regular file's size (sized), for a safetensors header length.
func sniffBytes(path string, b []byte, size int64, sized, gz bool) (string, error) {
	n := len(b)
	kind := ""
	switch {
	case bytes.HasPrefix(b, []byte(npyMagic)):
		kind = "npy"
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "", fmt.Errorf("file %s: a zip archive (.npz?): save each array with np.save (features.npy, labels.npy)", path)
	case n >= 4 && b[0] == 0 && b[1] == 0 && idxTypes[b[2]] != "" && b[3] >= 1 && b[3] <= 4:
		switch magic := binary.BigEndian.Uint32(b); magic {
		case idxImageMagic:
			return "idx", nil
		case idxLabelMagic:
			return "", fmt.Errorf("file %s: an IDX labels file: give the IDX images as the data and this as their labels file", path)
		default:
			return "", fmt.Errorf("file %s: an IDX file of %s with %d dimensions (magic 0x%08x): dsx reads IDX images of unsigned bytes (magic 0x%08x) and labels of unsigned bytes (0x%08x); save other data as .npy",
				path, idxTypes[b[2]], b[3], magic, uint32(idxImageMagic), uint32(idxLabelMagic))
		}
	case n >= 9 && bytes.IndexByte(b[:8], 0) >= 0 && (b[8] == '{' || b[8] == '[' || b[8] == 0xef):
		// An 8-byte length (with a zero byte, which text never holds)
		// and what starts JSON: a safetensors file, sound or not; its
		// reader names what is wrong with the header.
		kind = "safetensors"
	}
	switch {
	case kind == "":
		return "", nil
	case gz:
		return "", fmt.Errorf("file %s: a gzip-compressed %s file: decompress it first (dsx reads .npy and safetensors at disk speed, uncompressed)", path, kind)
	case kind == "safetensors" && sized && binary.LittleEndian.Uint64(b) > uint64(size-8):
		return "", fmt.Errorf("file %s: corrupt safetensors file: header length %d goes beyond the end of the file (%d bytes)", path, binary.LittleEndian.Uint64(b), size)
	}
	return kind, nil
}

// idxTypes names the IDX element types by their code, the magic's third
// byte.
var idxTypes = [256]string{0x08: "unsigned bytes", 0x09: "signed bytes", 0x0b: "int16", 0x0c: "int32", 0x0d: "float32", 0x0e: "float64"}

func loadCSVInput(in *Input, o Options) (*Set, error) {
	if o.Labels != "" {
		return nil, fmt.Errorf("file %s: CSV rows carry their label in the first column; a separate labels file (%s) goes with .npy, safetensors or IDX data", in.path, o.Labels)
	}
	mode := csvMode{labelled: true, classes: o.Classes}
	if o.Features > 0 {
		mode.features, mode.allowUnlabelled = o.Features, o.Unlabelled
	}
	r, err := in.body()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return loadCSV(r, in.size, mode, o.Progress)
}

// csvColumns counts the fields of the first line that is not blank. A
// regular file's line is counted as it is read, holding no more than a
// buffer of it and no field longer than maxCSVField; a stream's is peeked
// (nothing is consumed), and 0 (unknown) when it does not end within the
// buffer.
func csvColumns(in *Input) (int, error) {
	r, err := in.peek()
	if err != nil {
		return 0, err
	}
	if !in.regular {
		line, ok, err := peekLine(r)
		switch {
		case err != nil:
			return 0, err
		case ok && line == nil:
			return 0, fmt.Errorf("%s: empty set: no data rows", in.path)
		case !ok:
			return 0, nil
		}
		return bytes.Count(line, []byte(",")) + 1, nil
	}
	defer r.Close()
	return countFirstLine(r)
}

func loadIDXInput(in *Input, o Options) (*Set, error) {
	if o.Labels == "" && !o.Unlabelled {
		return nil, fmt.Errorf("file %s: %w: IDX images keep their labels in a separate IDX labels file", in.path, ErrNoLabels)
	}
	p, err := openIDXPair(in, o.Labels)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if o.Features > 0 && p.features() != o.Features {
		return nil, fmt.Errorf("file %s: %w: images of %d×%d have %d features, want %d",
			in.path, ErrFeatureCount, p.img.dims[1], p.img.dims[2], p.features(), o.Features)
	}
	reportTo(o.Progress, p)
	return p.read()
}

// PeekFeatures returns the number of features per row of the data that
// LoadFile(path, o) would read, from the headers alone: nothing is
// allocated by what they claim. For a CSV file it is the first line's
// number of fields less one for the label, or 0 (unknown) with
// o.Unlabelled, where the file may hold features only. Callers check two
// files against each other with it before reading either. It opens path
// for itself: to peek at a stream and then load it, [Open] it once and
// call [Input.Features] and [Input.Load].
func PeekFeatures(path string, o Options) (int, error) {
	in, err := Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	return in.Features(o)
}

// Features is [PeekFeatures] of the opened input: a stream's header is
// peeked, not consumed, so that Load reads it whole afterwards. A CSV
// stream whose first line does not fit the read buffer (1 MiB) gives 0
// (unknown), as an unlabelled CSV does.
func (in *Input) Features(o Options) (int, error) {
	format, err := in.sniff()
	if err != nil {
		return 0, err
	}
	switch format {
	case "csv":
		if o.Unlabelled {
			return 0, nil
		}
		cols, err := csvColumns(in)
		return max(cols-1, 0), err
	case "idx":
		if in.regular {
			f, err := openIDXImages(in)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			return f.dims[1] * f.dims[2], nil
		}
		r, err := in.peek()
		if err != nil {
			return 0, err
		}
		hdr, err := r.buffered().Peek(16)
		if err != nil {
			if err == io.EOF {
				return 0, fmt.Errorf("file %s: truncated: IDX header needs 16 bytes but only %d bytes found", in.path, len(hdr))
			}
			return 0, r.wrap(err)
		}
		rows, cols := binary.BigEndian.Uint32(hdr[8:]), binary.BigEndian.Uint32(hdr[12:])
		if rows == 0 || cols == 0 || uint64(rows)*uint64(cols) > math.MaxInt32 {
			return 0, fmt.Errorf("file %s: IDX images of %d×%d pixels: no features, or implausibly many", in.path, rows, cols)
		}
		return int(rows * cols), nil
	}
	f, size, err := in.regularFile(format)
	if err != nil {
		return 0, err
	}
	var feat *array
	if format == "npy" {
		feat, err = openNPY(f, in.path, size)
	} else {
		var st *safetensorsFile
		if st, err = openSafetensors(f, in.path, size); err != nil {
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
func loadArrays(in *Input, format string, o Options) (s *Set, err error) {
	f, size, err := in.regularFile(format)
	if err != nil {
		return nil, err
	}
	path := in.path
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
			return nil, fmt.Errorf("file %s: labels come either from a tensor (%s) or from a labels file (%s), not both", path, quote.Value(o.LabelsTensor), o.Labels)
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
		lin, err := Open(o.Labels)
		if err != nil {
			return nil, err
		}
		defer lin.Close()
		r, err := lin.peek()
		if err != nil {
			return nil, err
		}
		magic, _ := r.raw.Peek(len(npyMagic))
		if lin.regular {
			r.Close()
		}
		if string(magic) == npyMagic {
			lf, lsize, err := lin.regularFile("npy")
			if err != nil {
				return nil, err
			}
			if lab, err = openNPY(lf, o.Labels, lsize); err != nil {
				return nil, err
			}
		} else if idxLab, err = openIDXLabels(lin); err != nil {
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
