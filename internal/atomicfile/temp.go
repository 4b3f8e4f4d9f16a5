package atomicfile

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// started is about when this process started: a temporary file of the
// legacy pattern older than this belongs to no Write in progress here.
var started = time.Now()

// useTmpfile is false in tests of the named-file fallback.
var useTmpfile = true

// prefix is the start of a temporary name for the file base: ".BASE.tmp-".
func prefix(base string) string { return "." + base + ".tmp-" }

// createNamed creates a named temporary file ".BASE.tmp-PID-RANDOM" in dir.
func createNamed(dir, base string) (*os.File, string, error) {
	f, err := os.CreateTemp(dir, prefix(base)+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

// removeStale removes the temporary files that Writes of dir/base killed
// between creating and renaming them left behind: ".BASE.tmp-PID-RANDOM"
// whose process PID no longer exists, and ".BASE.tmp-DIGITS" (the pattern
// of earlier versions, without a PID) older than this process. Errors are
// ignored: cleaning up is a courtesy, never a reason to fail a save.
func removeStale(dir, base string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	p := prefix(base)
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, p)
		if !ok {
			continue
		}
		full := filepath.Join(dir, name)
		pid, _, withPID := strings.Cut(rest, "-")
		if !allDigits(pid) {
			continue
		}
		if withPID {
			if n, err := strconv.Atoi(pid); err == nil && n != os.Getpid() && !alive(n) {
				os.Remove(full)
			}
			continue
		}
		if st, err := os.Lstat(full); err == nil && st.Mode().IsRegular() && st.ModTime().Before(started) {
			os.Remove(full)
		}
	}
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
