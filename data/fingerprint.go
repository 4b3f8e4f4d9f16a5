package data

import (
	"fmt"
	"hash/crc32"

	"dsx/internal/safetensors"
)

// Fingerprint identifies the set's content for a checkpoint's resume: its
// shape, its classes and the CRC-32C of its features and labels as held
// (before any scaling), little-endian. Sets with equal fingerprints hold
// the same rows in the same order but for a 2⁻³² accident; the file the
// set came from is not part of it (data may move between machines). It
// reads every feature once, at several GB/s (hardware CRC). A mapped file
// cut short while it is read is an error (see Batch).
func (s *Set) Fingerprint() (string, error) {
	var sum uint32
	table := crc32.MakeTable(crc32.Castagnoli)
	err := s.guard(func() {
		sum = crc32.Update(0, table, safetensors.LE(s.X))
		sum = crc32.Update(sum, table, safetensors.LE(s.Y))
	})
	if err != nil {
		return "", err
	}
	labels := "no labels"
	if s.Y != nil {
		labels = fmt.Sprintf("%d classes", s.Classes)
	}
	return fmt.Sprintf("%d rows × %d features, %s, crc32c %08x", s.Rows, s.N, labels, sum), nil
}
