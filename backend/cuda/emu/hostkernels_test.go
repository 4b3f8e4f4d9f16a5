package emu

import (
	"fmt"
	"strings"
	"testing"

	"dsx/backend/cuda/cudatest"
	"dsx/backend/cuda/hostkern"
	"dsx/backend/cuda/lower"
	"dsx/backend/cuda/run"
)

// hostDevice launches single kernels as compiled for the host (package
// hostkern) on an emulated device's memory, with the emulator's launch
// checks: cudatest's kernel tests on the kernels' own CUDA source.
type hostDevice struct{}

func (hostDevice) Do(f func() error) error { return f() }
func (hostDevice) Alloc(bufs []*lower.Buffer, what string) (run.Memory, error) {
	return (&Device{}).Alloc(bufs, what)
}
func (hostDevice) Launch(m run.Memory, name string, args any, d lower.Dims) error {
	mm := m.(*memory)
	if !mm.host {
		return fmt.Errorf("the host kernels are not in use")
	}
	esize := int64(4)
	if strings.HasSuffix(name, "_f64") {
		esize = 8
	}
	if err := checkDims(name, esize, args, d); err != nil {
		return fmt.Errorf("launch of %s: %w", name, err)
	}
	return mm.arena.Launch(name, d, args, hostkern.Reverse())
}

// needHost skips a test without the host kernels, saying why (or fails it
// under DSX_REQUIRE_HOSTKERNELS=1, as make test sets).
func needHost(t *testing.T) {
	t.Helper()
	if err := hostKernels(); err != nil {
		if hostkern.Required() {
			t.Fatalf("DSX_REQUIRE_HOSTKERNELS=1: %v", err)
		}
		t.Skipf("skipped: %v (the emulator runs its Go transliterations of the kernels)", err)
	}
}

// TestHostXentKernels: the fused loss kernels' CUDA source, compiled for
// the host, against the float64 reference at T = 33 … 12000, every loss
// option, with a bias and the bfloat16 gradient (cudatest.XentKernels).
func TestHostXentKernels(t *testing.T) {
	needHost(t)
	cudatest.XentKernels(t, hostDevice{}, cudatest.HostKernelSizes)
}

// TestHostVocabKernels: the vocabulary-tile kernels likewise, over three
// tiles and a short fourth (cudatest.VocabKernels).
func TestHostVocabKernels(t *testing.T) {
	needHost(t)
	cudatest.VocabKernels(t, hostDevice{}, cudatest.HostKernelSizes)
}
