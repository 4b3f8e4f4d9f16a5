package data

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// reader is an opened input file, transparently gunzipped when it starts
// with the gzip magic bytes 1f 8b.
type reader struct {
	io.Reader
	f    *os.File
	gz   *gzip.Reader
	path string
	file *countingReader // the file's bytes read so far, for progress
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fileRead returns how many bytes of the file (compressed or not) have
// been read so far.
func (r *reader) fileRead() int64 { return r.file.n }

func (r *reader) Close() error {
	if r.gz != nil {
		r.gz.Close()
	}
	return r.f.Close()
}

// wrap turns a read error into one naming the file, saying whether the
// gzip stream is corrupt or cut short.
func (r *reader) wrap(err error) error {
	var ce flate.CorruptInputError
	if r.gz != nil && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ce)) {
		return fmt.Errorf("file %s: corrupt or truncated gzip data: %w", r.path, err)
	}
	return fmt.Errorf("file %s: %w", r.path, err)
}

func open(path string) (*reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError already names the file
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("file %s: is a directory", path)
	}
	cr := &countingReader{r: f}
	br := bufio.NewReaderSize(cr, 1<<20)
	r := &reader{Reader: br, f: f, path: path, file: cr}
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("file %s: corrupt gzip data: %w", path, err)
		}
		r.gz = gz
		r.Reader = bufio.NewReaderSize(gz, 1<<20)
	}
	return r, nil
}
