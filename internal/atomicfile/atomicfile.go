// Package atomicfile writes files so that a reader, or a crash, sees either
// the old content or the complete new content, never a partial file, and
// so that a crash leaves no temporary file behind.
//
// On Linux the bytes go to an unnamed file in the target's directory
// (open with O_TMPFILE): a process killed while writing leaves nothing,
// since the kernel frees an unnamed file with its last descriptor. Once
// flushed and synced, the file is linked under a temporary name
// (".NAME.tmp-PID-RANDOM") and renamed over the target, and the directory
// is synced. A kill between the link and the rename, a window of two
// system calls, leaves the temporary name; the next Write into the same
// directory removes temporary names of this pattern whose process is gone.
// Where O_TMPFILE is not supported (other systems, some file systems) the
// bytes go to a named temporary file of the same pattern, cleaned up the
// same way.
//
// On any error the temporary file is removed and an existing file at the
// target is left untouched. Models (package model) and prediction files
// (dsx predict --out) are written this way.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates or replaces path with what write writes, atomically. write
// gets a buffered writer; Write flushes it. Errors name path and say that
// nothing was written ("PATH: not saved: ..."), except a failed sync of the
// directory after the rename, which says the file is in place.
func Write(path string, write func(w io.Writer) error) (err error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not saved: exists and is not a regular file", path)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	removeStale(dir, base)
	f, tmp, err := create(dir, base)
	if err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			if tmp != "" {
				os.Remove(tmp)
			}
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	if tmp == "" { // unnamed: give it a name to rename
		if tmp, err = link(f, dir, base); err != nil {
			return fmt.Errorf("%s: not saved: %w", path, err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	// The file is in place; a failed directory sync only weakens durability.
	if d, derr := os.Open(dir); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil && !errors.Is(derr, os.ErrInvalid) {
			return fmt.Errorf("%s: saved, but syncing directory %s failed: %w", path, dir, derr)
		}
	}
	return nil
}

// Check reports whether Write(path, ...) can succeed as far as can be
// known before writing: path is not a directory or other non-regular
// file, its directory exists and a file can be created in it (a probe
// file is created and removed; on Linux an unnamed one, which a kill
// cannot leave behind). Commands call it before long work whose result
// goes to path.
func Check(path string) error {
	if path == "" {
		return errors.New("no file name")
	}
	if st, err := os.Stat(path); err == nil {
		switch {
		case st.IsDir():
			return fmt.Errorf("%s: is a directory; name the file to write", path)
		case !st.Mode().IsRegular():
			return fmt.Errorf("%s: exists and is not a regular file", path)
		}
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: cannot write here: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: cannot write here: %s is not a directory", path, dir)
	}
	f, tmp, err := create(dir, filepath.Base(path))
	if err != nil {
		return fmt.Errorf("%s: cannot write in directory %s: %w", path, dir, err)
	}
	f.Close()
	if tmp != "" {
		os.Remove(tmp)
	}
	return nil
}
