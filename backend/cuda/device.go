//go:build gpu

package cuda

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	"dsx/backend/cuda/run"
	"dsx/cudakernels"

	"gorgonia.org/cu"
)

// Open lowers cfg and runs it on the GPU (package run does the rest).
func (Backend) Open(cfg backend.Config) (backend.Layer, error) {
	if err := setup(); err != nil {
		return nil, err
	}
	return run.Open(gpu{}, "cuda", cfg)
}

// gpu is run.Device on the process's CUDA context.
type gpu struct{}

func (gpu) Name() string            { return device.name }
func (gpu) Do(f func() error) error { return onDevice(f) }

func (gpu) Sync() error {
	if err := cu.Synchronize(); err != nil {
		return fmt.Errorf("cuda: synchronising: %w", err)
	}
	return nil
}

func (gpu) FreeBytes() (int64, bool) {
	free, _, err := cu.MemInfo()
	return free, err == nil
}

// Bind makes a step's launcher (its function and typed argument block) or
// its product.
func (gpu) Bind(s *lower.Step) (run.Runner, error) {
	switch op := s.Op.(type) {
	case *lower.Gemm:
		return gemmStep{op}, nil
	case lower.Kernel:
		fn, ok := device.fn[op.Kernel()]
		if !ok {
			return nil, fmt.Errorf("cuda: no kernel %s loaded", op.Kernel())
		}
		args := op.NewArgs()
		v := reflect.ValueOf(args).Elem()
		ptrs := make([]unsafe.Pointer, v.NumField())
		for i := range ptrs {
			ptrs[i] = unsafe.Pointer(v.Field(i).UnsafeAddr())
		}
		return &launcher{op: op, fn: fn, args: args, ptrs: ptrs}, nil
	}
	return nil, fmt.Errorf("cuda: step %T is neither a product nor a kernel", s.Op)
}

// launcher is one kernel launch: the step fills the typed argument struct in
// place and cu passes the address of each field (every field is 8 bytes),
// so a launch allocates nothing on the Go heap.
type launcher struct {
	op   lower.Kernel
	fn   cu.Function
	args any
	ptrs []unsafe.Pointer
}

func (l *launcher) Run(a lower.Addr, c lower.Ctx) error {
	l.op.Fill(l.args, a, c)
	d := l.op.Dims(c)
	if err := l.fn.Launch(d.GridX, d.GridY, 1, d.BlockX, d.BlockY, 1, d.Shmem, cu.NoStream, l.ptrs); err != nil {
		return fmt.Errorf("cuda: launching %s (grid %d×%d, block %d×%d): %w", l.op.Kernel(), d.GridX, d.GridY, d.BlockX, d.BlockY, err)
	}
	return nil
}

type gemmStep struct{ op *lower.Gemm }

func (g gemmStep) Run(a lower.Addr, c lower.Ctx) error { return gemm(g.op.Call(a, c)) }

// Alloc makes every buffer of a layer at once, so that too little memory is
// one clear error.
func (gpu) Alloc(bufs []*lower.Buffer, what string) (run.Memory, error) {
	m := &memory{ptr: make([]cu.DevicePtr, len(bufs))}
	need := int64(0)
	for _, b := range bufs {
		need += b.Bytes
	}
	free, total, err := cu.MemInfo()
	if err != nil {
		return nil, fmt.Errorf("cuda: querying device memory: %w", err)
	}
	if need > free {
		return nil, fmt.Errorf("cuda: %s: %w: asked for %s, %s free of %s on %s", what, backend.ErrOutOfMemory, human(need), human(free), human(total), device.name)
	}
	for i, b := range bufs {
		p, err := cu.MemAlloc(b.Bytes)
		if err != nil {
			m.Free()
			if errors.Is(err, cu.OutOfMemory) {
				free, _, _ = cu.MemInfo()
				return nil, fmt.Errorf("cuda: %s: %w: asked for %s (%s, of %s in all), %s free on %s", what, backend.ErrOutOfMemory, human(b.Bytes), b.What, human(need), human(free), device.name)
			}
			return nil, fmt.Errorf("cuda: allocating %s for %s: %w", human(b.Bytes), b.What, err)
		}
		m.ptr[i] = p
	}
	return m, nil
}

// memory is a layer's device buffers, indexed by Buffer.ID.
type memory struct{ ptr []cu.DevicePtr }

func (m *memory) Addr(b *lower.Buffer) cudakernels.Ptr { return cudakernels.Ptr(m.ptr[b.ID]) }

func (m *memory) ToDevice(dst cudakernels.Ptr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return cu.MemcpyHtoD(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(len(src)))
}

func (m *memory) ToHost(dst []byte, src cudakernels.Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	return cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), cu.DevicePtr(src), int64(len(dst)))
}

func (m *memory) Zero(b *lower.Buffer) error { return cu.MemsetD8(m.ptr[b.ID], 0, b.Bytes) }

func (m *memory) Free() error {
	var first error
	for i, p := range m.ptr {
		if p == 0 {
			continue
		}
		if err := cu.MemFree(p); err != nil && first == nil {
			first = fmt.Errorf("cuda: freeing device memory: %w", err)
		}
		m.ptr[i] = 0
	}
	return first
}

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
