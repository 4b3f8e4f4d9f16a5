package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"dsx/internal/quote"
)

// LoadCSV reads a CSV file of lines "label,f1,f2,...": an integer label
// (written 3, or 3.0) followed by the numeric features. A UTF-8 byte order
// mark at the start is dropped. The first line is a header, and skipped,
// when one of its fields is neither a number nor empty. Blank lines are
// skipped; the set's Stats count every line read or skipped. classes <= 0
// infers the number of classes as max label + 1; otherwise every label
// must be below classes. The file may be gzip-compressed. Errors name
// "file:line" and the 1-based column, and quote at most a short prefix of
// a field.
func LoadCSV(path string, classes int) (*Set, error) {
	return loadCSV(path, classes, true, nil)
}

// maxCSVField bounds one field of a CSV line in bytes. No number needs a
// tenth of it; a field of megabytes (a corrupt or hostile file, perhaps a
// small gzip file) is an error as soon as it is seen, not held in memory.
const maxCSVField = 4096

// bom is the UTF-8 byte order mark some editors write at a file's start.
const bom = "\xef\xbb\xbf"

// lineReader reads lines of any length from a buffered reader without
// holding more than the line, and no field longer than maxCSVField.
type lineReader struct {
	br     *bufio.Reader
	r      *reader // for its path and to name read errors
	lineNo int     // lines returned so far
	long   []byte  // a line longer than br's buffer, assembled here
}

// next returns the next line, with its "\n" if it has one, and io.EOF at
// the end of the file (possibly with a last line that has no "\n"). Other
// errors name the file.
func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		if len(line) > 0 {
			lr.lineNo++
		}
		return line, lr.wrap(err)
	}
	// Longer than the buffer: assemble it, checking the field being read
	// (the bytes after the last comma) as each piece arrives.
	lr.long = lr.long[:0]
	commas, last := 0, -1 // commas so far; offset of the last one
	for {
		base := len(lr.long)
		lr.long = append(lr.long, line...)
		if i := bytes.LastIndexByte(line, ','); i >= 0 {
			commas += bytes.Count(line, []byte(","))
			last = base + i
		}
		if run := len(lr.long) - last - 1; run > maxCSVField {
			f := lr.long[last+1:]
			return nil, fmt.Errorf("%s:%d: column %d: field %s is longer than %d bytes: no number is that long",
				lr.r.path, lr.lineNo+1, commas+1, quote.Prefix(f), maxCSVField)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
		line, err = lr.br.ReadSlice('\n')
	}
	lr.lineNo++
	return lr.long, lr.wrap(err)
}

func (lr *lineReader) wrap(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return lr.r.wrap(err)
}

// loadCSV reads a CSV file whose rows start with a label (labelled) or hold
// features only. progress, when not nil, gets the file's bytes read so far
// and its size.
func loadCSV(path string, classes int, labelled bool, progress func(done, total int64)) (*Set, error) {
	r, err := open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var size int64
	if st, err := r.f.Stat(); err == nil {
		size = st.Size()
	}
	br, ok := r.Reader.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	lr := &lineReader{br: br, r: r}
	s := &Set{Source: path, Stats: LoadStats{Format: "csv", Bytes: size}}
	maxLabel := int32(-1)
	blank, header := 0, 0
	first := true
	for {
		b, rerr := lr.next()
		if rerr != nil && rerr != io.EOF {
			return nil, rerr
		}
		if lr.lineNo == 1 && len(b) > 0 {
			b = bytes.TrimPrefix(b, []byte(bom))
		}
		line := strings.TrimRight(string(b), "\r\n")
		if strings.TrimSpace(line) == "" {
			if len(b) > 0 {
				blank++
			}
		} else {
			isHeader := false
			if first {
				first = false
				isHeader = isCSVHeader(line)
			}
			if isHeader {
				header++
			} else {
				label, err := s.parseRow(line, labelled)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %w", path, lr.lineNo, err)
				}
				if classes > 0 && int(label) >= classes {
					return nil, fmt.Errorf("%s:%d: column 1: label %d out of range [0, %d)", path, lr.lineNo, label, classes)
				}
				maxLabel = max(maxLabel, label)
				if progress != nil && s.Rows%4096 == 0 {
					progress(r.fileRead(), size)
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if s.Rows == 0 {
		return nil, fmt.Errorf("%s: empty set: no data rows", path)
	}
	if progress != nil {
		progress(size, size)
	}
	s.Stats.RowsRead = s.Rows
	if header > 0 {
		s.Stats.Skipped = append(s.Stats.Skipped, Skipped{header, "header line"})
	}
	if blank > 0 {
		s.Stats.Skipped = append(s.Stats.Skipped, Skipped{blank, "blank lines"})
	}
	if !labelled {
		return s, nil
	}
	s.Classes = classes
	if classes <= 0 {
		s.Classes = int(maxLabel) + 1
	}
	return s, nil
}

// isCSVHeader tells whether the first non-blank line is a header: one of
// its fields is neither a number nor empty. A label written 1.0 is a
// number, so its row is data; an empty field (pandas writes one over the
// index column) does not make a header by itself.
func isCSVHeader(line string) bool {
	for _, f := range strings.Split(line, ",") {
		f = strings.TrimSpace(f)
		if _, err := strconv.ParseFloat(f, 64); err != nil && f != "" {
			return true
		}
	}
	return false
}

// parseLabel reads a class label: a non-negative integer, written as one
// (3) or as a number with no fractional part (3.0, 3e0).
func parseLabel(f string) (int64, error) {
	label, err := strconv.ParseInt(f, 10, 32)
	if err != nil {
		v, ferr := strconv.ParseFloat(f, 64)
		switch {
		case ferr != nil:
			return 0, fmt.Errorf("label %s is not a number", quote.Value(f))
		case v != math.Trunc(v) || math.IsInf(v, 0):
			return 0, fmt.Errorf("label %s is not an integer", quote.Value(f))
		case v < 0:
			return 0, fmt.Errorf("negative label %s", quote.Value(f))
		case v > math.MaxInt32:
			return 0, fmt.Errorf("label %s is too large", quote.Value(f))
		}
		return int64(v), nil
	}
	if label < 0 {
		return 0, fmt.Errorf("negative label %d", label)
	}
	return label, nil
}

// parseRow appends one data line to s and returns its label (0 for rows
// without one). Errors carry the column but not the file or line, which the
// caller adds.
func (s *Set) parseRow(line string, labelled bool) (int32, error) {
	col := 0
	rest, more := line, true
	var label int64
	if labelled {
		col = 1
		var field string
		field, rest, more = strings.Cut(line, ",")
		var err error
		if label, err = parseLabel(strings.TrimSpace(field)); err != nil {
			return 0, fmt.Errorf("column 1: %w", err)
		}
	}
	start := len(s.X)
	for more {
		col++
		var field string
		field, rest, more = strings.Cut(rest, ",")
		if v, ok := smallUint(field); ok {
			s.X = append(s.X, v)
			continue
		}
		f := strings.TrimSpace(field)
		v, err := strconv.ParseFloat(f, 32)
		if err != nil {
			s.X = s.X[:start]
			var ne *strconv.NumError
			if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
				return 0, fmt.Errorf("column %d: value %s out of float32 range", col, quote.Value(f))
			}
			return 0, fmt.Errorf("column %d: value %s is not a number", col, quote.Value(f))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			s.X = s.X[:start]
			return 0, fmt.Errorf("column %d: value %s is NaN or infinite", col, quote.Value(f))
		}
		s.X = append(s.X, float32(v))
	}
	n := len(s.X) - start
	if s.Rows == 0 {
		if n == 0 {
			return 0, fmt.Errorf("no features after the label (want \"label,f1,f2,...\")")
		}
		s.N = n
	} else if n != s.N {
		s.X = s.X[:start]
		if !labelled {
			return 0, fmt.Errorf("wrong number of columns: %d, want %d features", n, s.N)
		}
		return 0, fmt.Errorf("wrong number of columns: %d, want %d (label + %d features)", n+1, s.N+1, s.N)
	}
	if labelled {
		s.Y = append(s.Y, int32(label))
	}
	s.Rows++
	return int32(label), nil
}

// Load reads a labelled data set from one file, chosen by content: a CSV
// file of "label,f1,f2,..." lines, gzipped or not, with the number of
// classes inferred. IDX files keep labels in a separate file, so an IDX
// file here is reported with a pointer to [LoadIDX] and [LoadDir].
func Load(path string) (*Set, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory: use LoadDir for an MNIST-style folder", path)
	}
	r, err := open(path)
	if err != nil {
		return nil, err
	}
	var head [4]byte
	n, _ := io.ReadFull(r, head[:])
	r.Close()
	if n == 4 && head[0] == 0 && head[1] == 0 && head[2] == 0x08 && (head[3] == 1 || head[3] == 3) {
		return nil, fmt.Errorf("file %s: is an IDX file; images and labels come in separate files: use LoadIDX or LoadDir", path)
	}
	return LoadCSV(path, 0)
}

// smallUint parses a field of 1 to 7 decimal digits, the common case of
// pixel values, much faster than strconv.ParseFloat. Such values are exact
// in float32 (below 2^24).
func smallUint(f string) (float32, bool) {
	if len(f) == 0 || len(f) > 7 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return float32(v), true
}
