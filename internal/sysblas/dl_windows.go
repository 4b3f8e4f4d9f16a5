//go:build windows && (amd64 || arm64) && !nosysblas

package sysblas

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// open loads one DLL and finds its entry points. A bare name (the
// defaults, libopenblas.dll) is looked for beside the executable and then
// in the directories of PATH, and loaded by its full path: never from the
// current directory, where a planted DLL could be picked up.
// LOAD_WITH_ALTERED_SEARCH_PATH resolves the DLL's own dependencies (a
// MinGW build's libgfortran, say) from its directory first.
func open(name string, threads int) (*Lib, error) {
	path, err := findDLL(name)
	if err != nil {
		return nil, err
	}
	h, err := windows.LoadLibraryEx(path, 0, windows.LOAD_WITH_ALTERED_SEARCH_PATH)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l := &Lib{}
	if l.sgemm, err = windows.GetProcAddress(h, "sgemm_"); err != nil {
		return nil, fmt.Errorf("%s: no sgemm_: not a BLAS", path)
	}
	if l.dgemm, err = windows.GetProcAddress(h, "dgemm_"); err != nil {
		return nil, fmt.Errorf("%s: no dgemm_: not a BLAS", path)
	}
	l.info = Info{Loaded: true, Name: filepath.Base(path), Path: modulePath(h, path)}
	if fn := proc(h, "openblas_get_config"); fn != 0 {
		l.info.Config = cString(fn)
		l.info.Name = "OpenBLAS"
		if f := strings.Fields(l.info.Config); len(f) > 1 && f[0] == "OpenBLAS" {
			l.info.Name += " " + f[1]
		}
	}
	if fn := proc(h, "openblas_get_corename"); fn != 0 {
		l.info.Core = cString(fn)
		l.info.Warning = coreWarning(l.info.Core)
		l.info.Generic = l.info.Warning != ""
	}
	if fn := proc(h, "openblas_set_num_threads"); fn != 0 {
		syscall.SyscallN(fn, uintptr(threads))
		l.info.Threads = threads
	}
	return l, nil
}

// findDLL returns the full path of a DLL named without a directory, found
// beside the executable or on PATH; a path is returned as it is.
func findDLL(name string) (string, error) {
	if strings.ContainsAny(name, `\/:`) {
		return name, nil
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	dirs = append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
	for _, d := range dirs {
		if d == "" || d == "." || !filepath.IsAbs(d) {
			continue // never the current directory
		}
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(name + ": not found beside the executable or on PATH")
}

func proc(h windows.Handle, name string) uintptr {
	p, err := windows.GetProcAddress(h, name)
	if err != nil {
		return 0
	}
	return p
}

// cString calls fn, a C function returning a NUL-terminated string in the
// DLL's memory, and copies the string.
func cString(fn uintptr) string {
	r, _, _ := syscall.SyscallN(fn)
	if r == 0 {
		return ""
	}
	return windows.BytePtrToString(*(**byte)(unsafe.Pointer(&r)))
}

// modulePath is the file the DLL was loaded from.
func modulePath(h windows.Handle, fallback string) string {
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n, err := windows.GetModuleFileName(h, &buf[0], uint32(len(buf)))
	if err != nil || n == 0 {
		return fallback
	}
	return windows.UTF16ToString(buf[:n])
}

// syscallN calls the DLL function fn with args (see call).
func syscallN(fn uintptr, args []uintptr) { syscall.SyscallN(fn, args...) }
