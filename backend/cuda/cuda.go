//go:build gpu

package cuda

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"dsx/backend"
	"dsx/cudakernels"

	"gorgonia.org/cu"
)

func init() { backend.Register(Backend{}, 10) }

// EnvDevice names the environment variable that picks the GPU ordinal
// (default 0).
const EnvDevice = "DSX_CUDA_DEVICE"

// Backend is the CUDA backend.
type Backend struct{}

func (Backend) Name() string { return "cuda" }

// Available reports whether a GPU can be used, creating the context on first
// use.
func (Backend) Available() error { return setup() }

// Devices lists the GPUs the driver sees.
func (Backend) Devices() ([]backend.Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: %w: %v", backend.ErrUnavailable, err)
	}
	v := cu.Version()
	driver := fmt.Sprintf("CUDA %d.%d", v/1000, v%1000/10)
	var out []backend.Device
	for i := 0; i < n; i++ {
		d, err := cu.GetDevice(i)
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		name, err := d.Name()
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		mem, _ := d.TotalMem()
		maj, min, _ := d.ComputeCapability()
		out = append(out, backend.Device{Name: name, MemoryBytes: uint64(mem), Compute: fmt.Sprintf("%d.%d", maj, min), Driver: driver})
	}
	return out, nil
}

// device is the process-wide CUDA state: one context, the kernel modules and
// a cuBLAS handle. mu serialises every use.
var device struct {
	once sync.Once
	err  error
	mu   sync.Mutex
	dev  cu.Device
	name string
	ctx  cu.CUContext
	fn   map[string]cu.Function
}

func setup() error {
	device.once.Do(func() { device.err = initDevice() })
	return device.err
}

func initDevice() error {
	n, err := cu.NumDevices()
	if err != nil {
		return fmt.Errorf("cuda: %w: counting devices: %v", backend.ErrUnavailable, err)
	}
	if n == 0 {
		return fmt.Errorf("cuda: %w: the driver sees no GPU", backend.ErrUnavailable)
	}
	ord := 0
	if s := os.Getenv(EnvDevice); s != "" {
		if ord, err = strconv.Atoi(s); err != nil || ord < 0 || ord >= n {
			return fmt.Errorf("cuda: %w: %s=%q: want 0..%d", backend.ErrUnavailable, EnvDevice, s, n-1)
		}
	}
	if device.dev, err = cu.GetDevice(ord); err != nil {
		return fmt.Errorf("cuda: %w: device %d: %v", backend.ErrUnavailable, ord, err)
	}
	device.name, _ = device.dev.Name()
	if device.ctx, err = device.dev.RetainPrimaryCtx(); err != nil {
		return fmt.Errorf("cuda: %w: %s: creating a context: %v", backend.ErrUnavailable, device.name, err)
	}
	return onDevice(func() error {
		device.fn = map[string]cu.Function{}
		for _, m := range cudakernels.Modules {
			ptx, err := cudakernels.PTX(m)
			if err != nil {
				return err
			}
			mod, err := cu.LoadData(ptx)
			if err != nil {
				return fmt.Errorf("cuda: %w: %s: loading %s.ptx: %v (the driver must be ≥ 520)", backend.ErrUnavailable, device.name, m, err)
			}
			for _, k := range kernelNames[m] {
				f, err := mod.Function(k)
				if err != nil {
					return fmt.Errorf("cuda: %s.ptx has no kernel %s: %v", m, k, err)
				}
				device.fn[k] = f
			}
		}
		if err := blasInit(); err != nil {
			return fmt.Errorf("cuda: %w: %s: %v", backend.ErrUnavailable, device.name, err)
		}
		return nil
	})
}

var kernelNames = map[string][]string{
	"xent": {"xent_f32", "xent_f64", "xent_scale_f32", "xent_scale_f64", "xent_reduce",
		"xent_t32_f32", "xent_t32_f64", "xent_t64_f32", "xent_t64_f64", "xent_t128_f32", "xent_t128_f64",
		"xent_t256_f32", "xent_t256_f64", "xent_t512_f32", "xent_t512_f64", "xent_t1024_f32", "xent_t1024_f64",
		"xent_t2048_f32", "xent_t2048_f64", "xent_t4096_f32", "xent_t4096_f64"},
	"bias":  {"bias_add_f32", "bias_add_f64", "colsum_part_f32", "colsum_part_f64", "colsum_fin_f32", "colsum_fin_f64", "to_bf16"},
	"optim": {"sgd_f32", "sgd_f64", "adam_f32", "adam_f64"},
	"unfused": {"log_softmax_f32", "log_softmax_f64", "nll_f32", "nll_f64", "nll_grad_f32", "nll_grad_f64",
		"log_softmax_grad_f32", "log_softmax_grad_f64"},
}

// onDevice runs f on a locked OS thread with the context current, holding the
// device mutex.
func onDevice(f func() error) error {
	device.mu.Lock()
	defer device.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(device.ctx); err != nil {
		return fmt.Errorf("cuda: making the context current: %w", err)
	}
	return f()
}

// launcher is one kernel launch with its arguments laid out once: every
// argument is 8 bytes (cu copies 8 bytes per argument), and running it
// allocates nothing on the Go heap.
type launcher struct {
	name string
	fn   cu.Function
	args []uint64
	ptrs []unsafe.Pointer
}

// arg is one kernel argument: a device pointer, an int64 or a float64.
type arg = uint64

func ptrArg(p cu.DevicePtr) arg { return uint64(p) }
func intArg(v int64) arg        { return uint64(v) }
func fltArg(v float64) arg      { return *(*uint64)(unsafe.Pointer(&v)) }

func newLauncher(name string, args ...arg) *launcher {
	l := &launcher{name: name, fn: device.fn[name], args: args, ptrs: make([]unsafe.Pointer, len(args))}
	for i := range l.args {
		l.ptrs[i] = unsafe.Pointer(&l.args[i])
	}
	return l
}

func (l *launcher) launch(gx, gy, bx, shmem int) error {
	if err := l.fn.Launch(gx, gy, 1, bx, 1, 1, shmem, cu.NoStream, l.ptrs); err != nil {
		return fmt.Errorf("cuda: launching %s (grid %d×%d, block %d): %w", l.name, gx, gy, bx, err)
	}
	return nil
}

func hostPtr[F float32 | float64](s []F) unsafe.Pointer { return unsafe.Pointer(&s[0]) }

// memory is a layer's device allocations, requested while lowering and made
// at once so that too little memory is one clear error.
type memory struct {
	bufs []*dbuf
	live []cu.DevicePtr
}

// dbuf is a device buffer; ptr is set by alloc.
type dbuf struct {
	what  string
	bytes int64
	ptr   cu.DevicePtr
	// rowBytes is the bytes per batch row of a buffer indexed by the
	// batch's rows (x, targets, dx, per-row losses): a chunk starting at row
	// r0 uses ptr + r0·rowBytes. 0 for buffers without a batch axis and for
	// chunk-local ones (logits), which hold one chunk from their start.
	rowBytes int64
	cat      int // catExtra, catState or catInput (for MemStats)
}

// Categories of device buffers.
const (
	catExtra = iota // activations, logits, per-row values, scratch
	catState        // parameters, gradients, optimizer state
	catInput        // the batch
)

// at returns the address of row r0 of b.
func (b *dbuf) at(r0 int) cu.DevicePtr { return b.ptr + cu.DevicePtr(int64(r0)*b.rowBytes) }

func (m *memory) request(what string, bytes int64) *dbuf {
	if bytes < 8 {
		bytes = 8
	}
	b := &dbuf{what: what, bytes: bytes}
	m.bufs = append(m.bufs, b)
	return b
}

func (m *memory) total() int64 {
	t := int64(0)
	for _, b := range m.bufs {
		t += b.bytes
	}
	return t
}

// alloc makes every requested buffer (on the device thread).
func (m *memory) alloc(what string) error {
	need := m.total()
	free, total, err := cu.MemInfo()
	if err != nil {
		return fmt.Errorf("cuda: querying device memory: %w", err)
	}
	if need > free {
		return fmt.Errorf("cuda: %s: %w: asked for %s, %s free of %s on %s", what, backend.ErrOutOfMemory, human(need), human(free), human(total), device.name)
	}
	for _, b := range m.bufs {
		p, err := cu.MemAlloc(b.bytes)
		if err != nil {
			m.free()
			if errors.Is(err, cu.OutOfMemory) {
				free, _, _ = cu.MemInfo()
				return fmt.Errorf("cuda: %s: %w: asked for %s (%s, of %s in all), %s free on %s", what, backend.ErrOutOfMemory, human(b.bytes), b.what, human(need), human(free), device.name)
			}
			return fmt.Errorf("cuda: allocating %s for %s: %w", human(b.bytes), b.what, err)
		}
		b.ptr = p
		m.live = append(m.live, p)
	}
	return nil
}

func (m *memory) free() error {
	var first error
	for _, p := range m.live {
		if err := cu.MemFree(p); err != nil && first == nil {
			first = fmt.Errorf("cuda: freeing device memory: %w", err)
		}
	}
	m.live = nil
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

func ceilDiv(a, b int) int { return (a + b - 1) / b }
