//go:build !amd64 || purego

package graph

const useAVX2 = false

func expSub32x8(z, e *float32, n int, m float32, s *[8]float64) {
	panic("graph: no vector exp on this platform")
}
