package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"dsx/data"
	"dsx/internal/quote"
)

// maxClassName bounds one class name in bytes: a label, not a document.
const maxClassName = 1024

// readClassNames reads one class name per line; blank lines at the end are
// ignored, blank or repeated names elsewhere are errors. What it holds is
// bounded whatever the file (say /dev/urandom, or an endless pipe): no
// line longer than maxClassName bytes, no more names than classes (when
// > 0) or data.MaxInferredClasses, and no more bytes read than those
// names can take; past any bound it stops with an error.
func readClassNames(path string, classes int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := data.MaxInferredClasses
	if classes > 0 {
		limit = classes
	}
	maxBytes := int64(limit+1) * (maxClassName + 2) // names, ends of line, and as many blank lines
	br := bufio.NewReaderSize(io.LimitReader(f, maxBytes+1), 64<<10)
	var names []string
	seen := map[string]int{}
	blankAt, read := 0, int64(0) // the first blank line of the current run (1-based), 0: none
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		read += int64(len(b))
		if errors.Is(err, bufio.ErrBufferFull) || len(bytes.TrimRight(b, "\r\n")) > maxClassName {
			return nil, fmt.Errorf("%s:%d: class name %s is longer than %d bytes", path, line, quote.Prefix(b), maxClassName)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if read > maxBytes {
			return nil, fmt.Errorf("%s: more than %d bytes: not a file of at most %d class names", path, maxBytes, limit)
		}
		name := string(bytes.TrimSpace(b))
		if name == "" {
			if blankAt == 0 && (len(b) > 0 || err == nil) {
				blankAt = line
			}
		} else {
			if blankAt > 0 {
				return nil, fmt.Errorf("%s:%d: blank class name", path, blankAt)
			}
			i := len(names)
			if i == limit {
				return nil, fmt.Errorf("%s:%d: more than %d class names (%s)", path, line, limit, limitWhy(classes))
			}
			if !utf8.ValidString(name) {
				return nil, fmt.Errorf("%s:%d: class name %s is not valid UTF-8 (the model keeps names as JSON text)", path, line, quote.Value(name))
			}
			if j, ok := seen[name]; ok {
				return nil, fmt.Errorf("%s:%d: class name %s repeats line %d", path, line, quote.Value(name), j+1)
			}
			seen[name] = line - 1
			names = append(names, name)
		}
		if err == io.EOF {
			break
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no class names (want one per line)", path)
	}
	return names, nil
}

func limitWhy(classes int) string {
	if classes > 0 {
		return "--classes"
	}
	return "the most classes inferred without --classes; give --classes T for more"
}
