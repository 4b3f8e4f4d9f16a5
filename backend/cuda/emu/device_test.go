package emu

import (
	"errors"
	"strings"
	"testing"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	k "dsx/cudakernels"
	"dsx/graph"

	"gorgonia.org/tensor"
)

// TestOutOfMemory: a layer larger than the device is an error wrapping
// backend.ErrOutOfMemory, and nothing stays allocated.
func TestOutOfMemory(t *testing.T) {
	_, err := Backend{MemoryBytes: 1 << 20}.Open(backend.Config{Spec: graph.Spec{B: 64, N: 1024, T: 1000, DType: tensor.Float32, Want: graph.Want{DW: true}}})
	if !errors.Is(err, backend.ErrOutOfMemory) || !strings.Contains(err.Error(), "asked for") {
		t.Fatalf("got %v, want ErrOutOfMemory saying how much was asked", err)
	}
}

// TestBounds: the emulator refuses a kernel whose pointers leave their
// buffer, so a wrong offset or size in a plan fails the tests.
func TestBounds(t *testing.T) {
	d := &Device{}
	bufs := []*lower.Buffer{{ID: 0, What: "z", Bytes: 4 * 10}, {ID: 1, What: "b", Bytes: 4 * 5}}
	m, err := d.Alloc(bufs, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	mm := m.(*memory)
	args := &k.BiasAdd{Z: m.Addr(bufs[0]), Ld: 5, B: m.Addr(bufs[1]), Rows: 3, T: 5} // 3 rows of 5 in a 10-float buffer
	if err := emulate[float32](mm, args); err == nil || !strings.Contains(err.Error(), "bytes [0, 60) of a 40-byte buffer") {
		t.Errorf("3×5 rows in a 10-element buffer: %v", err)
	}
	args.Rows = 2
	if err := emulate[float32](mm, args); err != nil {
		t.Errorf("2×5 rows: %v", err)
	}
	args.B = 0
	if err := emulate[float32](mm, args); err == nil {
		t.Error("NULL bias accepted")
	}
}
