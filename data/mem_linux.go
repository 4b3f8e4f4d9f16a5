package data

import (
	"os"
	"syscall"
	"unsafe"
)

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14): fault in a range
// of pages for writing in one call instead of one trap per page.
const madvPopulateWrite = 23

// prefault maps the fresh pages of b before a read fills them; about a
// tenth faster than faulting them one by one during the copy. Older kernels
// refuse the advice, which changes nothing.
func prefault(b []byte) {
	if int64(len(b)) < parallelBytes/4 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), madvPopulateWrite)
}

// mapFile maps length bytes of f from off (any offset) copy-on-write
// (MAP_PRIVATE, readable and writable): the pages are the file's own in the
// page cache until something writes one, and the file never changes.
// region is the bytes at off; mapping is what unmap releases.
func mapFile(f *os.File, off, length int64) (region, mapping []byte, err error) {
	base := off &^ int64(os.Getpagesize()-1)
	mapping, err = syscall.Mmap(int(f.Fd()), base, int(off-base+length), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	return mapping[off-base:], mapping, nil
}

func unmap(mapping []byte) error { return syscall.Munmap(mapping) }
