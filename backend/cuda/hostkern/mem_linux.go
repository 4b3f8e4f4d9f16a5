package hostkern

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapShared makes a shared memory file of n bytes and maps it here.
func mapShared(n int64) ([]byte, *os.File, error) {
	fd, err := unix.MemfdCreate("dsx-device", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "dsx-device")
	if err := f.Truncate(n); err != nil {
		f.Close()
		return nil, nil, err
	}
	mem, err := unix.Mmap(fd, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mmap of %d bytes: %w", n, err)
	}
	return mem, f, nil
}

func unmap(mem []byte, f *os.File) error {
	err := unix.Munmap(mem)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
