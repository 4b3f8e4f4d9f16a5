package sysblas

import "testing"

// TestInstallFor: the command for a distribution, from os-release's ID or
// ID_LIKE.
func TestInstallFor(t *testing.T) {
	for _, c := range []struct{ osRelease, want string }{
		{"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n", "sudo apt-get install libopenblas0"},
		{"ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n", "sudo apt-get install libopenblas0"},
		{"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", "sudo dnf install openblas"},
		{"ID=arch\n", "sudo pacman -S openblas"},
		{"ID=alpine\n", "sudo apk add openblas"},
		{"ID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\n", "sudo zypper install libopenblas_pthreads0"},
		{"", "install OpenBLAS's run-time library (libopenblas.so.0) with the system's package manager"},
	} {
		if got := installFor(c.osRelease); got != c.want {
			t.Errorf("%q: %q, want %q", c.osRelease, got, c.want)
		}
	}
}
