package conformance

import (
	"testing"

	"dsx/backend/cuda/emu"
	_ "dsx/cpu"
)

// One line per backend. Backends not in this build or not usable here skip
// with the reason (the cuda backend is compiled in only with -tags gpu; see
// gpu_test.go). cuda-emu runs the cuda backend's lowering and runtime on a
// host emulator of its kernels, so they are checked without a GPU.
func TestCPU(t *testing.T)          { Run(t, "cpu") }
func TestCUDA(t *testing.T)         { Run(t, "cuda") }
func TestCUDAEmulator(t *testing.T) { Run(t, emu.Name) }
