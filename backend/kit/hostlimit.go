//go:build linux

package kit

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Besides what the machine has free (MemAvailable), a process is bounded
// by its cgroup's memory limit (a container, a systemd unit) and by
// RLIMIT_AS (ulimit -v): past either, an allocation fails or the kernel
// kills the process however much the machine has free. hostAvailable
// takes the smallest of the three.

// hostAvailable returns the memory this process can still allocate: the
// least of MemAvailable, its cgroup's limit less its usage, and RLIMIT_AS
// less its address space in use; src names the bound that applies. ok is
// false when none is known.
func hostAvailable() (avail int64, src string, ok bool) {
	if f, err := os.Open("/proc/meminfo"); err == nil {
		avail, ok = memAvailable(f)
		f.Close()
		src = "MemAvailable in /proc/meminfo"
	}
	for _, b := range []bound{cgroupBound("/proc/self/cgroup", "/sys/fs/cgroup"), rlimitBound()} {
		if b.ok && (!ok || b.n < avail) {
			avail, src, ok = b.n, b.src, true
		}
	}
	return max(avail, 0), src, ok
}

// bound is a limit on what the process may still allocate: n bytes, when
// ok, named by src.
type bound struct {
	n   int64
	ok  bool
	src string
}

// unlimited is where a limit means none (cgroup v1 writes 2⁶³ − 4096).
const unlimited = 1 << 62

// cgroupBound is the memory limit of the process's cgroup less what the
// cgroup uses, read from the cgroup file system under root (v2:
// memory.max and memory.current; v1: memory.limit_in_bytes and
// memory.usage_in_bytes). Inside a container the process's cgroup path is
// often not visible; the cgroup root seen there is its own, and is read
// instead.
func cgroupBound(selfCgroup, root string) bound {
	f, err := os.Open(selfCgroup)
	if err != nil {
		return bound{}
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dirs []string
		var limitFile, usageFile string
		switch {
		case parts[0] == "0" && parts[1] == "": // v2
			dirs = []string{filepath.Join(root, parts[2]), root}
			limitFile, usageFile = "memory.max", "memory.current"
		case strings.Contains(","+parts[1]+",", ",memory,"): // v1
			dirs = []string{filepath.Join(root, "memory", parts[2]), filepath.Join(root, "memory")}
			limitFile, usageFile = "memory.limit_in_bytes", "memory.usage_in_bytes"
		default:
			continue
		}
		for _, d := range dirs {
			limit, lok := readBytes(filepath.Join(d, limitFile))
			usage, uok := readBytes(filepath.Join(d, usageFile))
			if !lok || !uok {
				continue
			}
			if limit >= unlimited {
				break // this cgroup sets no limit
			}
			return bound{limit - usage, true, "the cgroup's memory limit (" + filepath.Join(d, limitFile) + ")"}
		}
	}
	return bound{}
}

// readBytes reads a cgroup file holding a byte count ("max": unlimited).
func readBytes(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 64 {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return unlimited, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// rlimitBound is RLIMIT_AS (ulimit -v) less the address space the
// process maps now (/proc/self/statm's first field, in pages).
func rlimitBound() bound {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil || rl.Cur >= unlimited {
		return bound{}
	}
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return bound{}
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return bound{}
	}
	pages, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return bound{}
	}
	return bound{int64(rl.Cur) - pages*int64(os.Getpagesize()), true, "RLIMIT_AS (ulimit -v)"}
}
