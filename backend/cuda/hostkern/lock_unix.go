//go:build unix

package hostkern

import (
	"os"
	"syscall"
)

// lockFile takes f's exclusive advisory lock, waiting for it.
func lockFile(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }

// unlockFile releases it.
func unlockFile(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
