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
	"unsafe"

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
	in, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	r, err := in.body()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return loadCSV(r, in.size, csvMode{labelled: true, classes: classes}, nil)
}

// csvMode says how loadCSV reads rows.
type csvMode struct {
	// labelled: rows start with a label. With features > 0 the first
	// line that is not blank decides instead: features+1 columns are a
	// label and the features, features columns (with allowUnlabelled)
	// features only; any other count is an error wrapping
	// ErrFeatureCount, given before another line is read.
	labelled        bool
	features        int
	allowUnlabelled bool
	classes         int // > 0: labels must be below it; applied to labelled rows only
}

// decide applies the first line's column count.
func (m *csvMode) decide(path string, cols int) error {
	switch {
	case m.features <= 0:
	case cols == m.features+1:
		m.labelled = true
	case cols == m.features && m.allowUnlabelled:
		m.labelled = false
	case m.allowUnlabelled:
		return fmt.Errorf("file %s: %w: rows have %d columns: want %d features, or a label and %d features", path, ErrFeatureCount, cols, m.features, m.features)
	default:
		return fmt.Errorf("file %s: %w: rows have %d columns: want a label and %d features", path, ErrFeatureCount, cols, m.features)
	}
	return nil
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
		lr.long = append(grow(lr.long, len(line), math.MaxInt), line...) // doubling: at most twice the line in all
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

// loadCSV reads CSV rows from r (a file of size bytes, 0 for a stream) as
// mode says. progress, when not nil, gets the file's bytes read so far and
// its size.
func loadCSV(r *reader, size int64, mode csvMode, progress func(done, total int64)) (*Set, error) {
	path := r.path
	lr := &lineReader{br: r.buffered(), r: r}
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
		b = bytes.TrimRight(b, "\r\n")
		// A view of the line, not a copy (a line may be hundreds of
		// megabytes): nothing below keeps it past this iteration.
		line := unsafe.String(unsafe.SliceData(b), len(b))
		if len(bytes.TrimSpace(b)) == 0 {
			if len(b) > 0 || rerr == nil {
				blank++
			}
		} else {
			isHeader := false
			if first {
				first = false
				if err := mode.decide(path, strings.Count(line, ",")+1); err != nil {
					return nil, err
				}
				isHeader = isCSVHeader(line)
			}
			if isHeader {
				header++
			} else {
				label, err := s.parseRow(line, mode.labelled)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %w", path, lr.lineNo, err)
				}
				if mode.labelled && mode.classes > 0 && int(label) >= mode.classes {
					return nil, fmt.Errorf("%s:%d: column 1: label %d out of range [0, %d)", path, lr.lineNo, label, mode.classes)
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
	if !mode.labelled {
		return s, nil
	}
	s.Classes = mode.classes
	if mode.classes <= 0 {
		s.Classes = int(maxLabel) + 1
	}
	return s, nil
}

// countFirstLine counts the fields of the first line of r that is not
// blank, reading it a buffer at a time: no more than the buffer is held,
// and a field longer than maxCSVField is an error naming its column.
func countFirstLine(r *reader) (int, error) {
	br := r.buffered()
	lineNo := 0
	for {
		lineNo++
		commas, run, blank := 0, 0, true
		for {
			chunk, err := br.ReadSlice('\n')
			for _, c := range chunk {
				switch {
				case c == ',':
					commas++
					run = 0
					blank = false
				case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f':
					run++
				default:
					run++
					blank = false
				}
			}
			if run > maxCSVField {
				return 0, fmt.Errorf("%s:%d: column %d: field is longer than %d bytes: no number is that long", r.path, lineNo, commas+1, maxCSVField)
			}
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				continue
			case err == io.EOF && blank:
				return 0, fmt.Errorf("%s: empty set: no data rows", r.path)
			case err != nil && err != io.EOF:
				return 0, r.wrap(err)
			}
			break
		}
		if !blank {
			return commas + 1, nil
		}
	}
}

// isCSVHeader tells whether the first non-blank line is a header: one of
// its fields is neither a number nor empty. A label written 1.0 is a
// number, so its row is data; an empty field (pandas writes one over the
// index column) does not make a header by itself.
//
// The fields are looked at one by one, without splitting the line: a line
// of millions of fields costs no memory, and a header is told at its
// first word.
func isCSVHeader(line string) bool {
	for rest, more := line, true; more; {
		var f string
		f, rest, more = strings.Cut(rest, ",")
		f = strings.TrimSpace(f)
		if _, err := strconv.ParseFloat(f, 64); err != nil && f != "" && !errors.Is(err, strconv.ErrRange) {
			return true // a number out of range is a number (and an error as data)
		}
	}
	return false
}

// parseLabel reads a class label: a non-negative integer, written as one
// (3) or as a decimal number whose value is exactly an integer (3.0, 3e0,
// 30e-1). Exactly: 2.9999999999999999 is not 3 (float64 would round it
// there). Underscores and hex are not numbers here.
func parseLabel(f string) (int64, error) {
	label, err := strconv.ParseInt(f, 10, 32)
	if err != nil {
		v, ferr := strconv.ParseFloat(f, 64)
		if ferr == nil && !plainDecimal(f) {
			ferr = strconv.ErrSyntax
		}
		switch {
		case ferr != nil && !errors.Is(ferr, strconv.ErrRange):
			return 0, fmt.Errorf("label %s is not a number", quote.Value(f))
		case math.IsNaN(v) || math.IsInf(v, 0) || !integral(f):
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

// plainDecimal reports whether a field strconv.ParseFloat accepted is
// written as a decimal number (or inf, nan): no digit separators (1_000)
// and no hexadecimal (0x1p-2), which no CSV writer produces and which
// more likely mean a corrupt field than a value.
func plainDecimal(f string) bool { return !strings.ContainsAny(f, "_xX") }

// integral reports whether a decimal number, as written, is an integer:
// its digits after the decimal point, once the exponent has moved it, are
// all zero. f is a number ParseFloat accepted, without underscores or hex.
func integral(f string) bool {
	f = strings.TrimLeft(f, "+-")
	mant, exp, _ := strings.Cut(strings.ToLower(f), "e")
	e := 0
	if exp != "" {
		v, err := strconv.Atoi(exp)
		if err != nil || v > 1000 || v < -1000 {
			return false // no label has such an exponent
		}
		e = v
	}
	ip, fp, _ := strings.Cut(mant, ".")
	digits := ip + fp
	point := len(ip) + e // the decimal point's place in digits
	for i := max(point, 0); i < len(digits); i++ {
		if digits[i] != '0' {
			return false
		}
	}
	return true
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
		if err == nil && !plainDecimal(f) {
			err = strconv.ErrSyntax
		}
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
	in, err := Open(path)
	if err != nil {
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			return nil, fmt.Errorf("%s: is a directory: use LoadDir for an MNIST-style folder", path)
		}
		return nil, err
	}
	defer in.Close()
	format, err := in.sniff()
	if err != nil {
		return nil, err
	}
	if format == "idx" {
		return nil, fmt.Errorf("file %s: is an IDX file; images and labels come in separate files: use LoadIDX or LoadDir", path)
	}
	if format != "csv" {
		return nil, fmt.Errorf("file %s: a %s file: use LoadFile", path, format)
	}
	r, err := in.body()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return loadCSV(r, in.size, csvMode{labelled: true}, nil)
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
