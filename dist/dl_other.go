//go:build !((linux || darwin) && (amd64 || arm64)) || nosysblas

package dist

// canLoad: this build loads no library (a static build with -tags
// nosysblas, or a platform purego does not cover), so MPI is unavailable.
const canLoad = false

func dlopen(string) (uintptr, error)  { return 0, errNoLoad }
func dlsym(uintptr, string) uintptr   { return 0 }
func ccall(uintptr, ...uintptr) int32 { panic("dist: " + errNoLoad.Error()) }
