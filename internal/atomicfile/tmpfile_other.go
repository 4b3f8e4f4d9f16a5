//go:build !linux

package atomicfile

import (
	"errors"
	"os"
)

// create opens a named temporary file: O_TMPFILE is Linux's.
func create(dir, base string) (*os.File, string, error) { return createNamed(dir, base) }

// link is never called: create never returns an unnamed file here.
func link(*os.File, string, string) (string, error) {
	return "", errors.New("atomicfile: no unnamed files on this system")
}
