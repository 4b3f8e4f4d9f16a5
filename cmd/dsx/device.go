package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"dsx/backend"
	"dsx/backend/gpuprobe"
	"dsx/cpu"
	"dsx/internal/quote"
)

// envReexec marks a dsx-gpu process started by dsx, so that it never probes
// or re-executes again.
const envReexec = "DSX_REEXEC"

// chooseDevice returns the backend for --device and prints one line saying
// which device runs and why.
//
// A binary that links CUDA cannot fall back by itself (it does not load
// without libcuda.so.1, and cu's init exits when cuInit fails), so the pure-Go
// dsx probes the GPU build, dsx-gpu, in a child process and, when it reports
// a usable GPU, replaces itself with it (same arguments); otherwise it runs on
// the CPU and says why.
func chooseDevice(name string, stderr io.Writer) (backend.Backend, error) {
	name, err := deviceName(name)
	if err != nil {
		return nil, err
	}
	if _, err := backend.Get("cuda"); err != nil && (name == "auto" || name == "cuda") && os.Getenv(envReexec) == "" {
		r := probeGPU()
		if r.Reason == "" {
			gpu := "GPU"
			if len(r.Devices) > 0 {
				gpu = r.Devices[0].Name
			}
			fmt.Fprintf(stderr, "dsx: device cuda (%s: %s, via %s)\n", name, gpu, r.Binary)
			env := append(os.Environ(), envReexec+"=1", backend.EnvDevice+"=cuda")
			err := syscall.Exec(r.Binary, append([]string{r.Binary}, os.Args[1:]...), env)
			return nil, fmt.Errorf("starting %s: %w", r.Binary, err)
		}
		if name == "cuda" {
			return nil, fmt.Errorf("--device cuda: %w: %s", backend.ErrUnavailable, r.Reason)
		}
		fmt.Fprintf(stderr, "dsx: device cpu (auto: no usable GPU: %s)\n", r.Reason)
		fmt.Fprintf(stderr, "dsx: cpu products on %s\n", blasLine(cpu.BLAS()))
		return backend.Get("cpu")
	}
	b, why, err := backend.Choose(name)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "dsx: %s\n", why)
	if b.Name() == "cpu" {
		fmt.Fprintf(stderr, "dsx: cpu products on %s\n", blasLine(cpu.BLAS()))
	}
	return b, nil
}

// deviceName is the device --device names (empty: $DSX_DEVICE, else
// auto), or a usage error for a name that is none: checked by itself
// before anything is printed (bench checks every name of its list first).
func deviceName(name string) (string, error) {
	if name == "" {
		name = os.Getenv(backend.EnvDevice)
	}
	if name == "" {
		name = "auto"
	}
	if name != "auto" && name != "cpu" && name != "cuda" {
		// Another backend linked into this binary (the tests' cuda-emu) is
		// taken as it is.
		if _, err := backend.Get(name); err != nil {
			return "", usageErr("--device %s: want auto, cpu or cuda", quote.Value(name))
		}
	}
	return name, nil
}

// blasLine says which GEMM the CPU backend uses, from where and how it is
// threaded, or why it uses gonum's.
func blasLine(r cpu.BLASReport) string {
	if !r.Loaded {
		return fmt.Sprintf("gonum (pure Go; no BLAS loaded: %s)", r.Reason)
	}
	s := r.Name
	if r.Core != "" {
		s += ", " + r.Core + " kernels"
	}
	s += ", from " + r.Path
	if r.Threads == 1 {
		s += fmt.Sprintf("; single-threaded calls split over %d Go workers", r.Workers)
	} else if r.Threads > 1 {
		s += fmt.Sprintf("; %d threads per call", r.Threads)
	} else {
		s += "; the library's own threads"
	}
	return s
}

// backendReport is one backend in `dsx devices --json`.
type backendReport struct {
	Name      string           `json:"name"`
	Available bool             `json:"available"`
	Reason    string           `json:"reason,omitempty"`
	Binary    string           `json:"binary,omitempty"`
	Devices   []backend.Device `json:"devices"`
	// BLAS: for the cpu backend, the GEMM it uses (the system's BLAS loaded
	// at run time, or gonum) and why.
	BLAS *cpu.BLASReport `json:"blas,omitempty"`
}

func cmdDevices(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "List the backends in this build (and the GPU build dsx-gpu), their devices, or why a backend is unusable.", stdout)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	var reps []backendReport
	for _, n := range backend.Names() {
		b, _ := backend.Get(n)
		r := backendReport{Name: n, Available: true}
		if err := b.Available(); err != nil {
			r.Available, r.Reason = false, err.Error()
		} else if d, err := b.Devices(); err != nil {
			r.Available, r.Reason = false, err.Error()
		} else {
			r.Devices = d
		}
		if n == "cpu" {
			b := cpu.BLAS()
			r.BLAS = &b
		}
		reps = append(reps, r)
	}
	if _, err := backend.Get("cuda"); err != nil && os.Getenv(envReexec) == "" {
		p := probeGPU()
		reps = append([]backendReport{{Name: "cuda", Available: p.Reason == "", Reason: p.Reason, Binary: p.Binary, Devices: p.Devices}}, reps...)
	}
	// Under a launcher every rank reports; rank 0 prints them all.
	world, err := worldOf(reps, quiet(stderr))
	if err != nil {
		return err
	}
	if world == nil {
		return nil
	}
	if *asJSON {
		return writeJSON(stdout, map[string]any{"backends": reps, "world": world})
	}
	defer printWorld(stdout, world)
	for _, r := range reps {
		if !r.Available {
			fmt.Fprintf(stdout, "%-5s unavailable: %s\n", r.Name, r.Reason)
			continue
		}
		fmt.Fprintf(stdout, "%-5s available\n", r.Name)
		for i, d := range r.Devices {
			fmt.Fprintf(stdout, "      %d: %s", i, d.Name)
			if d.MemoryBytes > 0 {
				fmt.Fprintf(stdout, ", %.1f GiB", float64(d.MemoryBytes)/(1<<30))
			}
			if d.Compute != "" {
				fmt.Fprintf(stdout, ", compute %s", d.Compute)
			}
			if d.Driver != "" {
				fmt.Fprintf(stdout, ", driver %s", d.Driver)
			}
			if d.Threads > 0 {
				fmt.Fprintf(stdout, ", %d threads", d.Threads)
			}
			fmt.Fprintln(stdout)
		}
		if r.BLAS != nil {
			fmt.Fprintf(stdout, "      BLAS: %s\n", blasLine(*r.BLAS))
			if r.BLAS.Warning != "" {
				fmt.Fprintf(stdout, "      warning: %s\n", r.BLAS.Warning)
			}
			if r.BLAS.Install != "" {
				fmt.Fprintf(stdout, "      warning: without a BLAS the CPU's products run on gonum's Go GEMM, about 10× slower at large shapes (bench/RESULTS.md); install one: %s\n", r.BLAS.Install)
			}
		}
	}
	return nil
}

// probeGPU asks the GPU build, next to this binary or on PATH, which GPUs it
// can use (see gpuprobe).
func probeGPU() gpuprobe.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	self, _ := os.Executable()
	r := gpuprobe.Probe(ctx, self)
	if r.Binary == "" && !nvidiaDriver() {
		// Building dsx-gpu is worth suggesting only where a GPU could run it.
		r.Reason = strings.Replace(r.Reason, " (build it with make build-gpu)", "", 1) + "; no NVIDIA driver on this machine either"
	}
	return r
}

// nvidiaDriver reports whether an NVIDIA kernel driver is loaded.
func nvidiaDriver() bool {
	for _, p := range []string{"/proc/driver/nvidia/version", "/dev/nvidiactl"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
