package emu

import (
	"fmt"
	"strings"

	"dsx/backend"
	"dsx/backend/cuda/hostkern"
	"dsx/backend/cuda/lower"
	"dsx/backend/cuda/run"
	k "dsx/cudakernels"
)

// Name is the backend's registry name.
const Name = "cuda-emu"

func init() { backend.Register(Backend{}, -10) }

// Backend runs the CUDA backend's plans on the host emulator. Its priority
// is below the CPU backend's, so "auto" never picks it. The registered one
// is Backend{}; a test that wants a smaller device opens its layers on
// Backend{MemoryBytes: n}.
type Backend struct {
	// MemoryBytes is the memory of the emulated device (0:
	// DefaultMemoryBytes); a layer that needs more is an error wrapping
	// backend.ErrOutOfMemory.
	MemoryBytes int64
}

// DefaultMemoryBytes is the emulated device's memory when
// Backend.MemoryBytes is 0.
const DefaultMemoryBytes = 4 << 30

func (b Backend) memory() int64 {
	if b.MemoryBytes > 0 {
		return b.MemoryBytes
	}
	return DefaultMemoryBytes
}

func (Backend) Name() string     { return Name }
func (Backend) Available() error { return nil }
func (b Backend) Devices() ([]backend.Device, error) {
	return []backend.Device{{Name: "CUDA kernel emulator (host, for tests)", MemoryBytes: uint64(b.memory())}}, nil
}

// Capabilities are the cuda backend's (lower.Capabilities).
func (Backend) Capabilities() backend.Capabilities { return lower.Capabilities() }

// Open lowers cfg exactly as the cuda backend does and runs it on the
// emulator.
func (b Backend) Open(cfg backend.Config) (backend.Layer, error) {
	return run.Open(&Device{Bytes: b.memory()}, Name, cfg)
}

// Device is a run.Device on the host: buffers are host memory at device
// addresses ((ID+1)·2³² + a few bytes, hostkern.Arena), and each kernel step
// runs the kernel's own CUDA source compiled for the host (package hostkern)
// or, where that cannot be built (no g++, DSX_HOSTKERNELS=off), a Go
// emulation written from its documented semantics. A host kernel that
// reads or writes outside its buffers faults; the Go emulations check every
// pointer against its buffer's bounds.
// A Device serves one layer (Backend.Open makes one per layer): its steps
// run on the memory Alloc made.
type Device struct {
	Bytes int64 // the device's memory (0: DefaultMemoryBytes)
	used  int64
	mem   *memory
}

func (d *Device) size() int64 { return Backend{MemoryBytes: d.Bytes}.memory() }

func (d *Device) Name() string             { return "emulator" }
func (d *Device) Do(f func() error) error  { return f() }
func (d *Device) Sync() error              { return nil }
func (d *Device) FreeBytes() (int64, bool) { return d.size() - d.used, true }

// Alloc makes every buffer, or none when they do not fit the device.
func (d *Device) Alloc(bufs []*lower.Buffer, what string) (run.Memory, error) {
	need := int64(0)
	sizes := make([]int64, len(bufs))
	for i, b := range bufs {
		need += b.Bytes
		if b.ID != i {
			return nil, fmt.Errorf("%s: buffer %q has ID %d at index %d", Name, b.What, b.ID, i)
		}
		sizes[i] = b.Bytes
	}
	if free := d.size() - d.used; need > free {
		return nil, fmt.Errorf("%s: %s: %w: asked for %d bytes, %d free", Name, what, backend.ErrOutOfMemory, need, free)
	}
	// Fresh device memory is garbage: the arena is NaN bytes, so that a
	// kernel that reads what nothing wrote shows it.
	a, err := hostkern.NewArena(sizes)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", Name, what, err)
	}
	m := &memory{d: d, arena: a, total: need}
	if err := hostKernels(); err == nil {
		m.host = a.HostErr() == nil
		if !m.host && hostkern.Required() {
			a.Close()
			return nil, fmt.Errorf("%s: %s: DSX_REQUIRE_HOSTKERNELS=1: %w", Name, what, a.HostErr())
		}
	} else if hostkern.Required() {
		a.Close()
		return nil, fmt.Errorf("%s: DSX_REQUIRE_HOSTKERNELS=1: %w", Name, err)
	}
	d.used += need
	d.mem = m
	return m, nil
}

// hostKernels is nil when the kernels run as compiled for the host
// (package hostkern), else why the emulator runs its Go transliterations
// of them instead.
func hostKernels() error { return hostkern.Available() }

// memory is a layer's buffers in a hostkern.Arena: at device addresses
// (ID+1)·2³² plus a few bytes, each buffer ending where its pages end.
type memory struct {
	d     *Device
	arena *hostkern.Arena
	host  bool // kernels run as compiled for the host
	total int64
}

func (m *memory) Addr(b *lower.Buffer) k.Ptr { return m.arena.Addr(b.ID) }

// view is the bytes [p, p+n) of one buffer, or an error when they are not
// inside one.
func (m *memory) view(p k.Ptr, n int64) ([]byte, error) {
	id, off, err := m.arena.Locate(p, n)
	if err != nil {
		return nil, err
	}
	return m.arena.Buf(id)[off : off+n], nil
}

func (m *memory) ToDevice(dst k.Ptr, src []byte) error {
	b, err := m.view(dst, int64(len(src)))
	if err != nil {
		return err
	}
	copy(b, src)
	return nil
}

func (m *memory) ToHost(dst []byte, src k.Ptr) error {
	b, err := m.view(src, int64(len(dst)))
	if err != nil {
		return err
	}
	copy(dst, b)
	return nil
}

func (m *memory) Zero(b *lower.Buffer) error {
	clear(m.arena.Buf(b.ID))
	return nil
}

func (m *memory) Free() error {
	if m.arena != nil {
		m.d.used -= m.total
		err := m.arena.Close()
		m.arena = nil
		return err
	}
	return nil
}

// Bind returns the step's emulation.
func (d *Device) Bind(s *lower.Step) (run.Runner, error) {
	switch op := s.Op.(type) {
	case *lower.Gemm:
		return &gemmRunner{op: op, m: d.mem}, nil
	case lower.Kernel:
		name := op.Kernel()
		known := false
		for _, kk := range k.Kernels {
			if kk.Name == name {
				known = true
				if fmt.Sprintf("%T", kk.Args) != strings.TrimPrefix(fmt.Sprintf("%T", op.NewArgs()), "*") {
					return nil, fmt.Errorf("kernel %s takes %T, the step fills %T", name, kk.Args, op.NewArgs())
				}
			}
		}
		if !known {
			return nil, fmt.Errorf("no kernel %s in cudakernels.Kernels", name)
		}
		return &kernelRunner{op: op, args: op.NewArgs(), m: d.mem}, nil
	}
	return nil, fmt.Errorf("%s: step %T is neither a product nor a kernel", Name, s.Op)
}
