//go:build gpu

package cuda

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"dsx/backend/cuda/cudatest"
	"dsx/backend/cuda/lower"
	"dsx/backend/cuda/run"

	"gorgonia.org/cu"
)

// The kernel tests (cudatest.XentKernels, cudatest.VocabKernels): the
// loss kernels launched one by one against rowmath.RowTerms and
// rowmath.RowGradScaled, within tol.KernelF64 / tol.KernelF32. The same
// tests run in make test on the kernels compiled for the host (package emu,
// TestHostXentKernels); here they run on the GPU, at more sizes.

// gpuKernels launches single kernels on the GPU.
type gpuKernels struct{}

func (gpuKernels) Do(f func() error) error { return onDevice(f) }
func (gpuKernels) Alloc(bufs []*lower.Buffer, what string) (run.Memory, error) {
	return gpu{}.Alloc(bufs, what)
}
func (gpuKernels) Launch(_ run.Memory, name string, args any, d lower.Dims) error {
	return launch(name, args, d)
}

// TestXentKernel runs the fused kernels (block per row, and the tiled one
// where T ≤ 4096) on logits whose rows have a stride ld > T, with NaN in the
// padding past the T valid columns and in a whole row past the batch, and
// compares them with the float64 reference.
func TestXentKernel(t *testing.T) {
	requireGPU(t)
	cudatest.XentKernels(t, gpuKernels{}, cudatest.KernelSizes)
}

// TestVocabKernels runs the vocabulary-tile kernels over three tiles and a
// short fourth, against the float64 reference on whole rows.
func TestVocabKernels(t *testing.T) {
	requireGPU(t)
	cudatest.VocabKernels(t, gpuKernels{}, []int{33, 1025, 8003, 50257})
}

// launch runs one kernel with a typed argument struct (on the device
// thread).
func launch(name string, args any, d lower.Dims) error {
	fn, ok := device.fn[name]
	if !ok {
		return fmt.Errorf("no kernel %s", name)
	}
	v := reflect.ValueOf(args).Elem()
	ptrs := make([]unsafe.Pointer, v.NumField())
	for i := range ptrs {
		ptrs[i] = unsafe.Pointer(v.Field(i).UnsafeAddr())
	}
	if err := fn.Launch(d.GridX, d.GridY, 1, d.BlockX, d.BlockY, 1, d.Shmem, cu.NoStream, ptrs); err != nil {
		return fmt.Errorf("launching %s: %w", name, err)
	}
	return cu.Synchronize()
}
