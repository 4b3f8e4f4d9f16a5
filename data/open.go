package data

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// reader reads an input's bytes, transparently gunzipped when they start
// with the gzip magic bytes 1f 8b. Closing it does not close the file:
// the [Input] that made it does.
type reader struct {
	io.Reader
	raw  *bufio.Reader // the file's bytes as they are (compressed or not)
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
		return r.gz.Close()
	}
	return nil
}

// buffered is the reader's decompressed bytes as a *bufio.Reader.
func (r *reader) buffered() *bufio.Reader { return r.Reader.(*bufio.Reader) }

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

// newReader reads src from its start, buffered, and gunzipped when it
// starts with the gzip magic. The magic is peeked, not consumed: on a
// stream nothing is lost.
func newReader(src io.Reader, path string) (*reader, error) {
	cr := &countingReader{r: src}
	br := bufio.NewReaderSize(cr, 1<<20)
	r := &reader{Reader: br, raw: br, path: path, file: cr}
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("file %s: corrupt gzip data: %w", path, err)
		}
		r.gz = gz
		r.Reader = bufio.NewReaderSize(gz, 1<<20)
	}
	return r, nil
}
