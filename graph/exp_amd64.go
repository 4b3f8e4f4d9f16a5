//go:build !purego

package graph

import "golang.org/x/sys/cpu"

// useAVX2: the CPU and the OS support AVX2 (x/sys/cpu checks both).
var useAVX2 = cpu.X86.HasAVX2

// expSub32x8 is expSub32 over n elements (n a multiple of 8) in AVX2,
// adding the terms to the lanes of s (exp_amd64.s).
//
//go:noescape
func expSub32x8(z, e *float32, n int, m float32, s *[8]float64)
