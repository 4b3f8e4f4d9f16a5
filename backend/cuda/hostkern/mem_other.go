//go:build !linux

package hostkern

import (
	"fmt"
	"os"
	"runtime"

	"dsx/backend"
)

// mapShared: the harness shares memory through memfd_create, which only
// Linux has.
func mapShared(n int64) ([]byte, *os.File, error) {
	return nil, nil, fmt.Errorf("%w: shared device memory for the host kernels needs Linux, not %s", backend.ErrUnavailable, runtime.GOOS)
}

func unmap([]byte, *os.File) error { return nil }
