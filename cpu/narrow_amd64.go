//go:build !purego

package cpu

import "golang.org/x/sys/cpu"

// useFMA: the CPU and the OS support AVX2 and FMA (x/sys/cpu checks both),
// so the float32 narrow kernels run in assembly (narrow_amd64.s).
var useFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dot32x8 is Σ x[i]·y[i] over n elements, n a multiple of 8.
//
//go:noescape
func dot32x8(x, y *float32, n int) float32

// axpy32x8 is y[i] += a·x[i] (fused) over n elements, n a multiple of 8.
//
//go:noescape
func axpy32x8(a float32, x, y *float32, n int)
