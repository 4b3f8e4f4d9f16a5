//go:build unix

package testio

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// FIFO makes a named pipe called name in a fresh folder and writes b into
// it from a goroutine, which waits for a reader to open it and gives up
// when the reader closes early (EPIPE). The test waits for the writer
// before it ends: a FIFO that no reader opened (the command failed first)
// or left unread is drained then. Where FIFOs cannot be made the test is
// skipped.
func FIFO(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			f.Write(b)
			f.Close()
		}
	}()
	t.Cleanup(func() {
		if r, err := os.OpenFile(p, os.O_RDWR, 0); err == nil { // never blocks, never reads EOF
			go io.Copy(io.Discard, r)
			<-done
			r.Close()
			return
		}
		<-done
	})
	return p
}
