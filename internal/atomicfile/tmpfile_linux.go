//go:build linux

package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// create opens the file to write: an unnamed file in dir (tmp is "") or,
// where the file system does not support O_TMPFILE, a named one.
func create(dir, base string) (f *os.File, tmp string, err error) {
	if useTmpfile {
		fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), "", nil
		}
		// EOPNOTSUPP (the file system), EISDIR or EINVAL (an old kernel):
		// a named file works; permission errors repeat there and say so.
	}
	return createNamed(dir, base)
}

// link gives the unnamed file f a temporary name in dir and returns it.
func link(f *os.File, dir, base string) (string, error) {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, prefix(base)+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(r[:]))
	fd := int(f.Fd())
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
	if err == nil {
		return tmp, nil
	}
	// Without /proc, AT_EMPTY_PATH links the descriptor itself (it needs
	// CAP_DAC_READ_SEARCH); failing that, copy into a named file.
	if unix.Linkat(fd, "", unix.AT_FDCWD, tmp, unix.AT_EMPTY_PATH) == nil {
		return tmp, nil
	}
	return copyNamed(f, dir, base, err)
}

// copyNamed copies the unnamed file f into a named temporary file, synced,
// and returns its name: the way out when f cannot be linked.
func copyNamed(f *os.File, dir, base string, linkErr error) (string, error) {
	g, tmp, err := createNamed(dir, base)
	if err != nil {
		return "", fmt.Errorf("linking the written file: %w; %w", linkErr, err)
	}
	_, err = f.Seek(0, io.SeekStart)
	if err == nil {
		_, err = io.Copy(g, f)
	}
	if err == nil {
		err = g.Chmod(0o644)
	}
	if err == nil {
		err = g.Sync()
	}
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", errors.Join(linkErr, err)
	}
	return tmp, nil
}
