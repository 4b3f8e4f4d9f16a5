package cpu

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// cacheInfo is the per-core cache the chunk rule sizes chunks for.
type cacheInfo struct {
	L2     int64  // bytes of level-2 cache one core has to itself (its size / the CPUs sharing it)
	Source string // where L2 came from: the sysfs file, or "assumed"
}

// assumedL2 is the per-core level-2 cache taken where none can be read: at
// the small end of current x86 and ARM cores (AMD Zen 4 has 1 MiB, Intel's
// server cores 1.25–2 MiB, Apple's performance cores share 16 MiB).
const assumedL2 = 1 << 20

var (
	cacheOnce sync.Once
	cache     cacheInfo
)

// hostCache reads the cache sizes once.
func hostCache() cacheInfo {
	cacheOnce.Do(func() { cache = readCache("/sys/devices/system/cpu/cpu0/cache") })
	return cache
}

// readCache reads Linux's description of cpu0's caches (index*/level,
// type, size, shared_cpu_list) under dir and returns the level-2 cache per
// core, or assumedL2 when there is none to read (not Linux, or a kernel
// that does not say).
func readCache(dir string) cacheInfo {
	idx, _ := filepath.Glob(filepath.Join(dir, "index*"))
	for _, d := range idx {
		read := func(f string) string {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				return ""
			}
			return strings.TrimSpace(string(b))
		}
		if read("level") != "2" || (read("type") != "Unified" && read("type") != "Data") {
			continue
		}
		size, ok := parseSize(read("size"))
		if !ok {
			continue
		}
		if n := countCPUs(read("shared_cpu_list")); n > 1 {
			size /= int64(n)
		}
		return cacheInfo{L2: size, Source: filepath.Join(d, "size")}
	}
	return cacheInfo{L2: assumedL2, Source: "assumed (no cache sizes in " + dir + ")"}
}

// parseSize reads sysfs's cache size: "2048K", "1M", "512".
func parseSize(s string) (int64, bool) {
	mul := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mul, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mul, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > 1<<40/mul {
		return 0, false
	}
	return n * mul, true
}

// countCPUs counts the CPUs of a list such as "0-3,8,10-11" (1 when it
// cannot be read).
func countCPUs(list string) int {
	n := 0
	for _, f := range strings.Split(list, ",") {
		lo, hi, rng := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 1
		}
		b := a
		if rng {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 1
			}
		}
		n += b - a + 1
	}
	return max(n, 1)
}
