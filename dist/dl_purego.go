//go:build (linux || darwin) && (amd64 || arm64) && !nosysblas

package dist

import "github.com/ebitengine/purego"

// canLoad: this build loads libraries at run time (purego).
const canLoad = true

// dlopen loads a library with its symbols global: Open MPI's components,
// which it loads itself, resolve symbols of libmpi through the global
// scope.
func dlopen(name string) (uintptr, error) {
	return purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

// dlsym is the address of a symbol, 0 when the library has none.
func dlsym(h uintptr, name string) uintptr {
	p, err := purego.Dlsym(h, name)
	if err != nil {
		return 0
	}
	return p
}

// ccall calls the C function at fn with integer and pointer arguments
// and returns its int result.
func ccall(fn uintptr, args ...uintptr) int32 {
	r, _, _ := purego.SyscallN(fn, args...)
	return int32(r)
}
