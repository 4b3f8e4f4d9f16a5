package sysblas

import (
	"os"
	"strings"
)

// defaultNames are the libraries tried when DSX_BLAS is unset: OpenBLAS's
// run-time package (Debian's libopenblas0, Fedora's openblas, ...), by the
// names the dynamic loader resolves.
var defaultNames = []string{"libopenblas.so.0", "libopenblas.so"}

const installHint = "install OpenBLAS: Debian's libopenblas0"

func isAccelerate(string) bool { return false }

// installCommand is the command that installs OpenBLAS's run-time library
// on this distribution (from /etc/os-release), for dsx devices.
func installCommand() string {
	b, _ := os.ReadFile("/etc/os-release")
	return installFor(string(b))
}

// installFor picks the command for an os-release file's ID and ID_LIKE.
func installFor(osRelease string) string {
	var ids []string
	for _, line := range strings.Split(osRelease, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && (k == "ID" || k == "ID_LIKE") {
			ids = append(ids, strings.Fields(strings.Trim(v, `"'`))...)
		}
	}
	for _, id := range ids {
		switch id {
		case "debian", "ubuntu":
			return "sudo apt-get install libopenblas0"
		case "fedora", "rhel", "centos":
			return "sudo dnf install openblas"
		case "arch":
			return "sudo pacman -S openblas"
		case "alpine":
			return "sudo apk add openblas"
		case "suse", "opensuse":
			return "sudo zypper install libopenblas_pthreads0"
		}
	}
	return "install OpenBLAS's run-time library (libopenblas.so.0) with the system's package manager"
}
