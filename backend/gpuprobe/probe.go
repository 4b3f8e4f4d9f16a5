// Package gpuprobe tells a pure-Go program whether the GPU build of dsx can
// run here, without linking CUDA itself.
//
// A binary that links gorgonia.org/cu does not even load without
// libcuda.so.1, and cu's package init exits the process when cuInit fails (a
// driver but no device). So the probe runs the GPU build, dsx-gpu, in a child
// process (`dsx-gpu devices --json`) and reads its answer; the caller then
// re-executes dsx-gpu or stays on the CPU, saying why.
package gpuprobe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"dsx/backend"
)

// EnvBinary names the GPU build explicitly.
const EnvBinary = "DSX_GPU_BINARY"

// Result is the probe's answer. The GPU is usable when Reason is empty.
type Result struct {
	Binary  string           // path of dsx-gpu, when found
	Devices []backend.Device // the GPUs it reported
	Reason  string           // why no GPU is usable
}

// libDirs are where NVIDIA drivers put libcuda.so.1.
var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/wsl/lib", "/usr/local/cuda/lib64", "/usr/local/cuda/compat", "/lib/x86_64-linux-gnu", "/lib64"}

// haveLibcuda reports whether the dynamic loader can find libcuda.so.1.
func haveLibcuda() bool {
	dirs := append([]string(nil), libDirs...)
	dirs = append(dirs, filepath.SplitList(os.Getenv("LD_LIBRARY_PATH"))...)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "libcuda.so.1")); err == nil {
			return true
		}
	}
	if out, err := exec.Command("ldconfig", "-p").Output(); err == nil && bytes.Contains(out, []byte("libcuda.so.1")) {
		return true
	}
	return false
}

// FindBinary looks for the GPU build: $DSX_GPU_BINARY, then dsx-gpu next to
// self, then dsx-gpu on $PATH.
func FindBinary(self string) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %v", EnvBinary, p, err)
		}
		return p, nil
	}
	if self != "" {
		p := filepath.Join(filepath.Dir(self), "dsx-gpu")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("dsx-gpu"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no dsx-gpu binary next to %s or on PATH (build it with make build-gpu)", filepath.Base(self))
}

// Probe finds dsx-gpu and asks it which GPUs it can use.
func Probe(ctx context.Context, self string) Result {
	bin, err := FindBinary(self)
	if err != nil {
		return Result{Reason: err.Error()}
	}
	r := Result{Binary: bin}
	if !haveLibcuda() {
		r.Reason = "no libcuda.so.1 (no NVIDIA driver installed)"
		return r
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "devices", "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// DSX_DIST=off: a rank of a data-parallel job probes before it joins
	// the job, and the probe, which inherits the launcher's variables, must
	// not join it in the rank's place.
	cmd.Env = append(os.Environ(), "DSX_REEXEC=1", "DSX_DIST=off")
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" { // cu's init prints its cuInit error on stdout
			msg = strings.TrimSpace(stdout.String())
		}
		if len(msg) > 300 {
			msg = msg[len(msg)-300:]
		}
		if ctx.Err() != nil {
			r.Reason = fmt.Sprintf("%s devices did not answer in time", filepath.Base(bin))
		} else {
			r.Reason = fmt.Sprintf("driver present but CUDA did not initialise (%s exited: %v)", filepath.Base(bin), err)
		}
		if msg != "" {
			r.Reason += ": " + msg
		}
		return r
	}
	var rep struct {
		Backends []struct {
			Name      string           `json:"name"`
			Available bool             `json:"available"`
			Reason    string           `json:"reason"`
			Devices   []backend.Device `json:"devices"`
		} `json:"backends"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		r.Reason = fmt.Sprintf("%s devices --json printed something unreadable: %v", filepath.Base(bin), err)
		return r
	}
	for _, b := range rep.Backends {
		if b.Name != "cuda" {
			continue
		}
		if !b.Available {
			r.Reason = b.Reason
			return r
		}
		if len(b.Devices) == 0 {
			r.Reason = "CUDA initialised but reports no device"
			return r
		}
		r.Devices = b.Devices
		return r
	}
	r.Reason = fmt.Sprintf("%s has no cuda backend", filepath.Base(bin))
	return r
}
