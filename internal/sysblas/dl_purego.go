//go:build (linux || darwin) && (amd64 || arm64) && !nosysblas

package sysblas

import (
	"fmt"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// open loads one library and finds its entry points.
func open(name string, threads int) (*Lib, error) {
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	l := &Lib{}
	if l.sgemm, err = purego.Dlsym(h, "sgemm_"); err != nil {
		return nil, fmt.Errorf("%s: no sgemm_: not a BLAS", name)
	}
	if l.dgemm, err = purego.Dlsym(h, "dgemm_"); err != nil {
		return nil, fmt.Errorf("%s: no dgemm_: not a BLAS", name)
	}
	l.info = Info{Loaded: true, Name: filepath.Base(name), Path: where(l.sgemm, name), Threads: 0}
	if isAccelerate(name) {
		l.info.Name = "Accelerate"
	}
	if fn := sym(h, "openblas_get_config"); fn != 0 {
		var get func() string
		purego.RegisterFunc(&get, fn)
		l.info.Config = get()
		l.info.Name = "OpenBLAS"
		if f := strings.Fields(l.info.Config); len(f) > 1 && f[0] == "OpenBLAS" {
			l.info.Name += " " + f[1]
		}
	}
	if fn := sym(h, "openblas_get_corename"); fn != 0 {
		var get func() string
		purego.RegisterFunc(&get, fn)
		l.info.Core = get()
		l.info.Warning = coreWarning(l.info.Core)
		l.info.Generic = l.info.Warning != ""
	}
	if fn := sym(h, "openblas_set_num_threads"); fn != 0 {
		purego.SyscallN(fn, uintptr(threads))
		l.info.Threads = threads
	}
	return l, nil
}

func sym(h uintptr, name string) uintptr {
	p, err := purego.Dlsym(h, name)
	if err != nil {
		return 0
	}
	return p
}

// syscallN calls the C function fn with args (see call).
func syscallN(fn uintptr, args []uintptr) { purego.SyscallN(fn, args...) }

// dlInfo is C's Dl_info; fname points into the loader's memory.
type dlInfo struct {
	fname *byte
	fbase uintptr
	sname *byte
	saddr uintptr
}

// where is the file that holds the symbol at addr (dladdr), or name when
// the C library has no dladdr.
func where(addr uintptr, name string) string {
	fn := sym(purego.RTLD_DEFAULT, "dladdr")
	if fn == 0 {
		return name
	}
	var dladdr func(addr uintptr, info *dlInfo) int32
	purego.RegisterFunc(&dladdr, fn)
	var di dlInfo
	if dladdr(addr, &di) == 0 || di.fname == nil {
		return name
	}
	p := cString(di.fname)
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real // the file itself, not the alternatives' links to it
	}
	return p
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
