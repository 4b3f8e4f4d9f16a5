package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"dsx/internal/quote"
)

// checkedWriter passes writes to w and keeps the first error, so that a
// command whose output is lost (stdout a full disk, /dev/full, a closed
// pipe) fails with that error however it wrote: run checks it after the
// command returns. Once a write has failed, every later one fails too.
type checkedWriter struct {
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// outputErr is the error of a command whose output failed to be written.
func outputErr(err error) error {
	return fmt.Errorf("writing the output failed, so it is lost: %w", err)
}

// closeStdout closes standard output at exit and reports a failure (a
// file system that reports write errors on close), which would otherwise
// leave the output lost and the exit status 0. A stdout that was already
// closed is no error.
func closeStdout() error {
	if err := os.Stdout.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return outputErr(err)
	}
	return nil
}

// maxErrorLine bounds the error line dsx prints. Errors about what a file
// holds stay under 300 bytes (they quote at most quote.Max bytes of a
// value); file names are given in full, so a line can be longer, but a
// file name of megabytes (or one holding a newline) still gives one line
// of at most this many bytes, cut in the middle.
const maxErrorLine = 1024

// errorLine is err's message as printed: on one line (control bytes
// escaped), at most maxErrorLine bytes.
func errorLine(err error) string { return quote.Text(err.Error(), maxErrorLine) }
