//go:build !linux

package kit

import "os"

// hostAvailable is MemAvailable where /proc/meminfo exists; cgroups and
// RLIMIT_AS are read on Linux only.
func hostAvailable() (avail int64, src string, ok bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	avail, ok = memAvailable(f)
	return avail, "MemAvailable in /proc/meminfo", ok
}
