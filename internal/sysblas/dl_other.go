//go:build !((linux || darwin || windows) && (amd64 || arm64)) || nosysblas

package sysblas

import (
	"fmt"
	"runtime"
)

func open(name string, threads int) (*Lib, error) {
	return nil, fmt.Errorf("%s: loading a library at run time is not supported on %s/%s", name, runtime.GOOS, runtime.GOARCH)
}

func syscallN(fn uintptr, args []uintptr) {
	panic("sysblas: no library on " + runtime.GOOS + "/" + runtime.GOARCH)
}
