package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// LoadCSV reads a CSV file of lines "label,f1,f2,...": an integer label
// followed by the numeric features. The first line is taken as a header and
// skipped when its first field is not an integer. Blank lines are skipped.
// classes <= 0 infers the number of classes as max label + 1; otherwise
// every label must be below classes. The file may be gzip-compressed.
// Errors name "file:line" and the 1-based column.
func LoadCSV(path string, classes int) (*Set, error) {
	return loadCSV(path, classes, true, nil)
}

// loadCSV reads a CSV file whose rows start with a label (labelled) or hold
// features only. For rows without labels the first line is a header when
// one of its fields is not a number. progress, when not nil, gets the
// file's bytes read so far and its size.
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
	s := &Set{Source: path, Stats: LoadStats{Format: "csv", Bytes: size}}
	maxLabel := int32(-1)
	lineNo, blank, header := 0, 0, 0
	first := true
	for {
		line, rerr := br.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			return nil, r.wrap(rerr)
		}
		if len(line) > 0 {
			lineNo++
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			if len(line) > 0 || rerr != io.EOF {
				blank++
			}
		} else {
			isHeader := false
			if first {
				first = false
				isHeader = isCSVHeader(line, labelled)
			}
			if isHeader {
				header++
			} else {
				label, err := s.parseRow(line, labelled)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %w", path, lineNo, err)
				}
				if classes > 0 && int(label) >= classes {
					return nil, fmt.Errorf("%s:%d: column 1: label %d out of range [0, %d)", path, lineNo, label, classes)
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

// isCSVHeader tells whether the first non-blank line is a header: its first
// field is not an integer (rows with labels) or one of its fields is not a
// number (rows of features only).
func isCSVHeader(line string, labelled bool) bool {
	if labelled {
		f0, _, _ := strings.Cut(line, ",")
		_, err := strconv.Atoi(strings.TrimSpace(f0))
		return err != nil
	}
	for _, f := range strings.Split(line, ",") {
		if _, err := strconv.ParseFloat(strings.TrimSpace(f), 64); err != nil {
			return true
		}
	}
	return false
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
		f := strings.TrimSpace(field)
		var err error
		label, err = strconv.ParseInt(f, 10, 32)
		switch {
		case err != nil:
			return 0, fmt.Errorf("column 1: label %q is not an integer", f)
		case label < 0:
			return 0, fmt.Errorf("column 1: negative label %d", label)
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
				return 0, fmt.Errorf("column %d: value %q out of float32 range", col, f)
			}
			return 0, fmt.Errorf("column %d: value %q is not a number", col, f)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			s.X = s.X[:start]
			return 0, fmt.Errorf("column %d: value %q is NaN or infinite", col, f)
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
