//go:build linux

package kit

import (
	"dsx/backend"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCgroupBound reads a cgroup's limit less its usage, v2 and v1, at
// the process's own path or (inside a container) the root; "max" and
// v1's 2⁶³−4096 are no limit.
func TestCgroupBound(t *testing.T) {
	dir := t.TempDir()
	put := func(rel, s string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s), 0o644)
	}
	self := filepath.Join(dir, "self")
	for _, c := range []struct {
		name, cgroup string
		files        map[string]string
		want         int64
		ok           bool
	}{
		{"v2", "0::/user/app\n", map[string]string{"root/user/app/memory.max": "1073741824\n", "root/user/app/memory.current": "73741824\n"}, 1000000000, true},
		{"v2 max", "0::/user/app\n", map[string]string{"root/user/app/memory.max": "max\n", "root/user/app/memory.current": "5\n"}, 0, false},
		{"v2 root", "0::/hidden\n", map[string]string{"root/memory.max": "2000\n", "root/memory.current": "500\n"}, 1500, true},
		{"v1", "4:memory:/job\n3:cpu:/\n", map[string]string{"root/memory/job/memory.limit_in_bytes": "4096\n", "root/memory/job/memory.usage_in_bytes": "1024\n"}, 3072, true},
		{"v1 unlimited", "4:memory:/job\n", map[string]string{"root/memory/job/memory.limit_in_bytes": "9223372036854771712\n", "root/memory/job/memory.usage_in_bytes": "1024\n"}, 0, false},
		{"v1 root", "4:cpuacct,memory:/x\n", map[string]string{"root/memory/memory.limit_in_bytes": "100\n", "root/memory/memory.usage_in_bytes": "40\n"}, 60, true},
	} {
		os.RemoveAll(filepath.Join(dir, "root"))
		os.WriteFile(self, []byte(c.cgroup), 0o644)
		for rel, s := range c.files {
			put(rel, s)
		}
		b := cgroupBound(self, filepath.Join(dir, "root"))
		if b.ok != c.ok || b.ok && b.n != c.want || b.ok && !strings.Contains(b.src, "cgroup") {
			t.Errorf("%s: %+v, want %d (ok %v)", c.name, b, c.want, c.ok)
		}
	}
}

// TestRlimitBound: with RLIMIT_AS set (ulimit -v), what the host has
// available is at most the limit less the address space in use, and
// CheckHostMemory names the limit. The soft limit is restored after.
func TestRlimitBound(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &old); err != nil {
		t.Skip(err)
	}
	statm, _ := os.ReadFile("/proc/self/statm")
	var pages int64
	for _, c := range strings.Fields(string(statm))[0] {
		pages = pages*10 + int64(c-'0')
	}
	inUse := pages * int64(os.Getpagesize())
	limit := uint64(inUse + 2<<30)
	if limit > old.Max {
		t.Skipf("hard limit %d below what the test sets", old.Max)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Skip(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_AS, &old)
	avail, ok := HostAvailable()
	if !ok || avail > 2<<30 || avail < 1<<30 {
		t.Errorf("HostAvailable under a limit 2 GiB above the address space in use: %d", avail)
	}
	err := CheckHostMemory("inputs", 3<<30)
	if !errors.Is(err, backend.ErrOutOfMemory) || !strings.Contains(err.Error(), "RLIMIT_AS") {
		t.Errorf("CheckHostMemory(3 GiB): %v", err)
	}
}
