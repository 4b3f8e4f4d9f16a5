package data

import (
	"unsafe"
)

// mapFeatures makes a's values the set's X in place, without a copy, when
// they can be: float32 in the host's byte order, aligned for float32, on a
// system where files can be mapped (Linux). The mapping is copy-on-write:
// X reads the file's pages in the page cache, so the features take no
// memory beyond the cache, and a write to X copies its page and never
// reaches the file. ok is false when a must be read instead.
func (a *array) mapFeatures(s *Set) (ok bool) {
	if a.dt.kind != 'f' || a.dt.size != 4 || a.dt.big == littleHost || a.off%4 != 0 || a.count == 0 {
		return false
	}
	region, mapping, err := mapFile(a.f, a.off, a.size())
	if err != nil {
		return false // no mapping here (or no address space left): read instead
	}
	s.X = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(region))), a.count)
	s.mapping = mapping
	s.Stats.Mapped = true
	a.mapped = true
	return true
}

// Close releases the file mapping that holds X for a set loaded with
// [Options.Map]; X, and every slice of it, must not be used afterwards
// (X is set to nil). For any other set, and on a second call, it does
// nothing.
func (s *Set) Close() error {
	if s == nil || s.mapping == nil {
		return nil
	}
	m := s.mapping
	s.X, s.mapping = nil, nil
	return unmap(m)
}
