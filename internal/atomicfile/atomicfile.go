// Package atomicfile writes files so that a reader, or a crash, sees either
// the old content or the complete new content, never a partial file.
//
// The bytes go to a temporary file in the target's directory, which is
// flushed, synced and renamed over the target; the directory is then
// synced. On any error the temporary file is removed and an existing file
// at the target is left untouched. Models (package model) and prediction
// files (dsx predict --out) are written this way.
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
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
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
