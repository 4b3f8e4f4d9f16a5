//go:build !unix

package testio

import "testing"

// FIFO skips the test: named pipes are a Unix feature (Windows' named
// pipes live in their own namespace, not among the files a user names).
func FIFO(t testing.TB, name string, b []byte) string {
	t.Helper()
	t.Skip("no FIFOs on this platform")
	return ""
}
