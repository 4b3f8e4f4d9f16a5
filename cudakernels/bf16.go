package cudakernels

import "math"

// BF16 rounds v to bfloat16 as bf16.cuh's bf16_round does (to_bf16, the
// loss kernels' bfloat16 gradient, the optimizers' bfloat16 weights):
// nearest, ties to even; NaN stays NaN (quiet), ±Inf stays ±Inf, values
// past the largest bfloat16 become ±Inf. The result is the upper 16 bits of
// a float32.
func BF16(v float32) uint16 {
	u := math.Float32bits(v)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}
