package run

import (
	"dsx/backend/cuda/lower"
	"dsx/cudakernels"
	"dsx/dist"
)

// Device is what a lowered layer needs from a GPU (or from the host
// emulator that stands in for one in tests). Every method but Do is called
// inside Do.
type Device interface {
	// Name names the device in errors ("NVIDIA H100 80GB HBM3").
	Name() string
	// Do runs f with the device ready for use by the calling goroutine (on
	// CUDA: a locked OS thread with the context current, holding the
	// process's device lock).
	Do(f func() error) error
	// Alloc allocates bufs at once: too little memory is one error wrapping
	// backend.ErrOutOfMemory that says how much was asked and is free. On
	// failure nothing stays allocated.
	Alloc(bufs []*lower.Buffer, what string) (Memory, error)
	// Bind prepares one step of a plan for running (a kernel's function and
	// argument block, or a product).
	Bind(s *lower.Step) (Runner, error)
	// Sync waits for all work queued on the device.
	Sync() error
	// FreeBytes is the device memory free now, if the device can tell.
	FreeBytes() (int64, bool)
}

// Memory is the device memory of one layer's buffers.
type Memory interface {
	// Addr is the device address of b.
	Addr(b *lower.Buffer) cudakernels.Ptr
	// ToDevice copies len(src) bytes from the host to dst; ToHost copies
	// len(dst) bytes from src.
	ToDevice(dst cudakernels.Ptr, src []byte) error
	ToHost(dst []byte, src cudakernels.Ptr) error
	// Zero sets b's bytes to 0.
	Zero(b *lower.Buffer) error
	// Free frees every buffer; it is safe to call twice.
	Free() error
}

// Runner runs one bound step for a chunk, with buffer addresses from a.
type Runner interface {
	Run(a lower.Addr, c lower.Ctx) error
}

// Collectives is implemented by a Device that all-reduces its own memory
// (NCCL on a GPU), so that a data-parallel layer's dW and db cross no host
// copy. A Device without it, or whose Reducer declines, has them reduced
// through host copies over the layer's dist.Comm.
type Collectives interface {
	// Reducer returns the device's reducer over comm, or nil and why not
	// (no library). It is local: no rank waits for another.
	Reducer(comm dist.Comm) (Reducer, string)
}

// Reducer all-reduces device memory in place over the ranks of a job.
type Reducer interface {
	// Init makes the reducer's communicator: every rank calls it once, at
	// the same point (outside Do; it enters Do itself where it needs the
	// device).
	Init() error
	// AllReduce replaces n elements at p, float32 when f32 else float64,
	// by their sum over the ranks, queued on the device's stream behind the
	// work before it and ahead of the work after (inside Do).
	AllReduce(p cudakernels.Ptr, n int, f32 bool) error
	// Name says what reduces ("NCCL 2.19.3 on the device").
	Name() string
	// Device identifies the physical device among every rank's (a hash of
	// the host and the GPU's PCI address): two ranks with the same cannot
	// both reduce on it.
	Device() uint64
}
