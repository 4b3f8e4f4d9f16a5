package data

import (
	"fmt"
	"math"
	"os"
	"strings"

	"dsx/internal/quote"
	"dsx/internal/safetensors"
)

// DefaultFeaturesTensors and DefaultLabelsTensors are the tensor names tried,
// in order, in a safetensors data file when [Options] names none.
var (
	DefaultFeaturesTensors = []string{"features", "x", "X", "embeddings", "inputs"}
	DefaultLabelsTensors   = []string{"labels", "y", "Y", "targets", "label"}
)

// stDtypes maps safetensors dtypes to the element types dsx reads.
var stDtypes = map[string]dtype{
	"F32": {kind: 'f', size: 4}, "F64": {kind: 'f', size: 8},
	"I8": {kind: 'i', size: 1}, "I16": {kind: 'i', size: 2}, "I32": {kind: 'i', size: 4}, "I64": {kind: 'i', size: 8},
	"U8": {kind: 'u', size: 1}, "U16": {kind: 'u', size: 2}, "U32": {kind: 'u', size: 4}, "U64": {kind: 'u', size: 8},
	"BOOL": {kind: 'b', size: 1},
}

// safetensorsFile is an opened safetensors data file whose header has been
// checked against the file's size.
type safetensorsFile struct {
	f    *os.File
	path string
	h    *safetensors.Header
}

func openSafetensors(f *os.File, path string, size int64) (*safetensorsFile, error) {
	h, err := safetensors.ReadHeader(f, size)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	return &safetensorsFile{f: f, path: path, h: h}, nil
}

// find returns the tensor called name, or with name "" the first of the
// defaults present. ok is false when none is there.
func (s *safetensorsFile) find(name string, defaults []string) (*array, bool, error) {
	cands := defaults
	if name != "" {
		cands = []string{name}
	}
	for _, c := range cands {
		t, ok := s.h.Get(c)
		if !ok {
			continue
		}
		a := &array{f: s.f, path: s.path, what: "tensor " + quote.Value(c), off: s.h.DataStart + int64(t.Begin)}
		dt, known := stDtypes[t.Dtype]
		if !known {
			return nil, true, fmt.Errorf("%s: dtype %s is not supported: want F32, F64 or an integer type", a.where(), t.Dtype) // a dtype the header check knows: short
		}
		a.dt = dt
		if t.Count > uint64(math.MaxInt/dt.size) {
			return nil, true, fmt.Errorf("%s: %d elements do not fit in memory here", a.where(), t.Count)
		}
		for _, d := range t.Shape {
			a.shape = append(a.shape, int(d)) // each dimension fits: the header checked count·size against the file
		}
		a.count = int(t.Count)
		return a, true, nil
	}
	return nil, false, nil
}

// missing says which tensors were looked for and which the file has.
func (s *safetensorsFile) missing(kind, name string, defaults []string) error {
	want := "no tensor " + quote.Value(name)
	if name == "" {
		want = "no " + kind + " tensor (looked for " + strings.Join(defaults, ", ") + ")"
	}
	return fmt.Errorf("file %s: %s; it holds %s", s.path, want, quoteList(s.h.Names(), 2))
}

// quoteList quotes the first k names (each with quote.Value) and says how
// many more there are: a header of thousands of names, or of one name of
// megabytes, gives a short error.
func quoteList(names []string, k int) string {
	if len(names) == 0 {
		return "no tensors"
	}
	q := make([]string, 0, k+1)
	for _, n := range names[:min(k, len(names))] {
		q = append(q, quote.Value(n))
	}
	if len(names) > k {
		q = append(q, fmt.Sprintf("and %d more", len(names)-k))
	}
	return strings.Join(q, ", ")
}

// TensorNames lists the tensors of a safetensors file, in file order, its
// header checked against its size; for a file of another format it returns
// nil and no error.
func TensorNames(path string) ([]string, error) {
	in, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return in.TensorNames()
}

// TensorNames is [TensorNames] of the opened input; a stream (which
// cannot be safetensors data) gives nil, and nothing of it is consumed.
func (in *Input) TensorNames() ([]string, error) {
	format, err := in.sniff()
	if err != nil || format != "safetensors" || !in.regular {
		return nil, err
	}
	st, err := openSafetensors(in.f, in.path, in.size)
	if err != nil {
		return nil, err
	}
	return st.h.Names(), nil
}
