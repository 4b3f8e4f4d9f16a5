package data

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Input is a data file opened once. Every read of it, from the format's
// sniff to the body, goes through this one opening: a regular file is
// read at offsets (never reopened by name), and a stream (a pipe, a FIFO,
// /dev/stdin, a process substitution such as <(zcat x.csv.gz), a
// character device) through one buffered reader, whose first bytes tell
// the format and the header without being consumed. A stream is read
// once: CSV and IDX, gzipped or not, read from one; .npy and safetensors
// files, which are read by their size (and mapped), are an error naming
// the stream up front, as is a second [Input.Load] of the same stream.
type Input struct {
	path    string
	f       *os.File
	info    os.FileInfo
	regular bool
	size    int64   // a regular file's size
	stream  *reader // a stream's one reader, made on first use
	read    bool    // a stream's body has been read
	format  string  // "" until sniffed
}

// Open opens a data file once for [Input.Features], [Input.Load] and
// [Input.TensorNames]; the caller closes it. A folder is an error.
func Open(path string) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError already names the file
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("file %s: is a directory (--data takes a folder of IDX files)", path)
	}
	in := &Input{path: path, f: f, info: st, regular: st.Mode().IsRegular()}
	if in.regular {
		in.size = st.Size()
	}
	return in, nil
}

// Close closes the file. Sets loaded from it stay valid (a mapping
// outlives the descriptor).
func (in *Input) Close() error {
	if in == nil || in.f == nil {
		return nil
	}
	if in.stream != nil {
		in.stream.Close()
	}
	return in.f.Close()
}

// Path is the name the input was opened by.
func (in *Input) Path() string { return in.path }

// Info is the opened file's information, for comparing inputs
// (os.SameFile) without opening them again.
func (in *Input) Info() os.FileInfo { return in.info }

// Stream reports whether the input is not a regular file (a pipe, FIFO or
// device): it is read once, front to back.
func (in *Input) Stream() bool { return !in.regular }

// peek returns a reader positioned at the start of the data without
// consuming anything of a stream: a fresh reader of a regular file, or
// the stream's one reader, made on first use, whose buffered bytes the
// caller may Peek but must not read.
func (in *Input) peek() (*reader, error) {
	if in.regular {
		return newReader(io.NewSectionReader(in.f, 0, in.size), in.path)
	}
	if in.read {
		return nil, in.readTwice()
	}
	if in.stream == nil {
		r, err := newReader(in.f, in.path)
		if err != nil {
			return nil, err
		}
		in.stream = r
	}
	return in.stream, nil
}

// body returns a reader positioned at the start of the data, to be read:
// for a stream, the one reader, which no later call gets again. The
// caller closes it (which leaves the file open).
func (in *Input) body() (*reader, error) {
	r, err := in.peek()
	if err != nil {
		return nil, err
	}
	if !in.regular {
		in.read = true
		in.stream = nil // closed by the caller
	}
	return r, nil
}

func (in *Input) readTwice() error {
	return fmt.Errorf("file %s: a pipe or device is read once, and this one has been read (give the same stream once, or a regular file)", in.path)
}

// notStreamable is the error for a .npy or safetensors stream.
func (in *Input) notStreamable(format string) error {
	return fmt.Errorf("file %s: %s data from a pipe or device: dsx reads .npy and safetensors files by their size (and maps them), so they must be regular files; save the stream to a file first", in.path, format)
}

// regularFile returns the file and its size for formats read at offsets,
// or the error for a stream.
func (in *Input) regularFile(format string) (*os.File, int64, error) {
	if !in.regular {
		return nil, 0, in.notStreamable(format)
	}
	return in.f, in.size, nil
}

// peekLine returns the first line of r's buffered data that is not blank
// (without its end of line), peeking, never reading: ok is false when no
// such line ends within the buffer (a longer first line).
func peekLine(r *reader) (line []byte, ok bool, err error) {
	br := r.buffered()
	for n := 4096; ; n *= 2 {
		n = min(n, br.Size())
		b, perr := br.Peek(n)
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if perr == io.EOF && len(bytes.TrimSpace(b)) > 0 {
					return b, true, nil
				}
				break
			}
			if l := b[:i]; len(bytes.TrimSpace(l)) > 0 {
				return l, true, nil
			}
			b = b[i+1:]
		}
		switch {
		case perr == io.EOF:
			return nil, true, nil // no line at all: empty
		case perr != nil:
			return nil, false, r.wrap(perr)
		case n == br.Size():
			return nil, false, nil
		}
	}
}
