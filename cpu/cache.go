package cpu

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// cacheInfo is the last-level cache the chunk rule compares a batch's
// logits with.
type cacheInfo struct {
	LLC    int64  // bytes of the last-level cache (the largest level cpu0 has), all of it
	Level  int    // its level (3 on most x86; 2 where that is the last)
	Source string // where LLC came from: the sysfs file, or "assumed"
}

// assumedLLC is the last-level cache taken where none can be read: at the
// small end of current laptops and desktops (8–32 MiB).
const assumedLLC = 8 << 20

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
// type and size) under dir and returns its last-level cache (the
// highest level of type Unified or Data), or assumedLLC when there is none
// to read (not Linux, or a kernel that does not say).
func readCache(dir string) cacheInfo {
	idx, _ := filepath.Glob(filepath.Join(dir, "index*"))
	best := cacheInfo{LLC: assumedLLC, Source: "assumed (no cache sizes in " + dir + ")"}
	for _, d := range idx {
		read := func(f string) string {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				return ""
			}
			return strings.TrimSpace(string(b))
		}
		level, err := strconv.Atoi(read("level"))
		if err != nil || level <= best.Level || (read("type") != "Unified" && read("type") != "Data") {
			continue
		}
		if size, ok := parseSize(read("size")); ok {
			best = cacheInfo{LLC: size, Level: level, Source: filepath.Join(d, "size")}
		}
	}
	return best
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
