//go:build !unix

package hostkern

import "os"

// lockFile does nothing where there is no flock. The host build needs
// g++ and a Unix-like host (its fibers are ucontext's); this only lets the
// package compile elsewhere, where two concurrent builds are not guarded.
func lockFile(f *os.File) error { return nil }

// unlockFile does nothing either.
func unlockFile(f *os.File) error { return nil }
