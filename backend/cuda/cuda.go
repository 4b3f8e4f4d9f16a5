//go:build gpu

package cuda

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"

	"dsx/backend"
	"dsx/backend/cuda/lower"
	"dsx/cudakernels"
	"dsx/dist"

	"gorgonia.org/cu"
)

func init() { backend.Register(Backend{}, 10) }

// EnvDevice names the environment variable that picks the GPU ordinal
// (default 0; in a process a launcher started as one of several ranks on a
// host, its local rank: one GPU per rank).
const EnvDevice = "DSX_CUDA_DEVICE"

// Backend is the CUDA backend.
type Backend struct{}

func (Backend) Name() string { return "cuda" }

// Capabilities is the lowering's declaration (lower.Capabilities).
func (Backend) Capabilities() backend.Capabilities { return lower.Capabilities() }

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
	ord  int // the device's ordinal
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
	} else if l, ok, _ := dist.DetectLauncher(os.Getenv); ok && l.Size > 1 && l.LocalRank >= 0 {
		// One GPU per rank of a data-parallel job (NCCL refuses two ranks
		// on one GPU): its local rank's, or the one GPU this rank sees
		// (a launcher that gives each rank its own, as Slurm's
		// --gpus-per-task does through CUDA_VISIBLE_DEVICES).
		switch {
		case n == 1:
		case l.LocalRank < n:
			ord = l.LocalRank
		default:
			return fmt.Errorf("cuda: %w: %s: local rank %d, but this host shows it %d GPUs (one GPU per rank: start at most %d ranks a host, or set %s)",
				backend.ErrUnavailable, l, l.LocalRank, n, n, EnvDevice)
		}
	}
	device.ord = ord
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
			for _, k := range cudakernels.Kernels {
				if k.Module != m {
					continue
				}
				f, err := mod.Function(k.Name)
				if err != nil {
					return fmt.Errorf("cuda: %s.ptx has no kernel %s: %v", m, k.Name, err)
				}
				device.fn[k.Name] = f
			}
		}
		if err := blasInit(); err != nil {
			return fmt.Errorf("cuda: %w: %s: %v", backend.ErrUnavailable, device.name, err)
		}
		return nil
	})
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
