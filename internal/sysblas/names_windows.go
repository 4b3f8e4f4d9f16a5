package sysblas

// defaultNames are the DLLs tried when DSX_BLAS is unset: OpenBLAS's
// Windows build (the release zip's bin\libopenblas.dll, MSYS2's) and the
// name conda-forge and vcpkg give it, beside dsx.exe or on PATH.
var defaultNames = []string{"libopenblas.dll", "openblas.dll"}

const installHint = `install OpenBLAS: from OpenBLAS-<version>-x64.zip (https://github.com/OpenMathLib/OpenBLAS/releases) put bin\libopenblas.dll beside dsx.exe or on PATH`

func isAccelerate(string) bool { return false }

// installCommand is how to get the default library, for dsx devices.
func installCommand() string { return installHint }
