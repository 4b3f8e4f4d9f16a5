package sysblas

// defaultNames are the libraries tried when DSX_BLAS is unset: OpenBLAS's
// run-time package (Debian's libopenblas0, Fedora's openblas, ...), by the
// names the dynamic loader resolves.
var defaultNames = []string{"libopenblas.so.0", "libopenblas.so"}

const installHint = "install OpenBLAS: Debian's libopenblas0"

func isAccelerate(string) bool { return false }
