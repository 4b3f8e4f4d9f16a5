//go:build !linux && !darwin && !windows

package sysblas

var defaultNames []string

const installHint = "no default library on this system"

func isAccelerate(string) bool { return false }

// installCommand is how to get a library, for dsx devices.
func installCommand() string {
	return "set " + EnvBLAS + "=PATH to a BLAS library that exports sgemm_ and dgemm_"
}
