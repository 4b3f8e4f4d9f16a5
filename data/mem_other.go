//go:build !linux

package data

import (
	"errors"
	"os"
)

// prefault does nothing where MADV_POPULATE_WRITE does not exist.
func prefault([]byte) {}

// mapFile is not implemented here: features are read instead.
func mapFile(*os.File, int64, int64) (region, mapping []byte, err error) {
	return nil, nil, errors.ErrUnsupported
}

func unmap([]byte) error { return nil }
