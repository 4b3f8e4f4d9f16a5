//go:build !amd64 || purego

package cpu

// useFMA is false: the float32 narrow kernels run on gonum's.
var useFMA = false

func dot32x8(x, y *float32, n int) float32 { panic("cpu: no dot32x8 on this platform") }

func axpy32x8(a float32, x, y *float32, n int) { panic("cpu: no axpy32x8 on this platform") }
