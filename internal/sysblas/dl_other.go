//go:build !((linux || darwin || windows) && (amd64 || arm64)) || nosysblas

package sysblas

import (
	"fmt"
	"runtime"
	"unsafe"
)

func open(name string, threads int) (*Lib, error) {
	return nil, fmt.Errorf("%s: loading a library at run time is not supported on %s/%s", name, runtime.GOOS, runtime.GOARCH)
}

func call[F float32 | float64](fn uintptr, p *gemmArgs[F], a, b, c unsafe.Pointer) {
	panic("sysblas: no library on " + runtime.GOOS + "/" + runtime.GOARCH)
}
