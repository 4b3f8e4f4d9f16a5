// bf16.cuh — float32 → bfloat16 rounding shared by the kernels that store
// bfloat16 (to_bf16 in bias.cu, the loss kernels' bfloat16 gradient in
// xent.cu, the optimizers' bfloat16 weight copy in optim.cu). bfloat16 values
// are carried as 16-bit integers (the upper half of a float32): the kernels
// need no cuda_bf16.h, and the Go side (emu.BF16) rounds the same way.

#ifndef BF16_CUH
#define BF16_CUH

// bf16_round is f rounded to the nearest bfloat16, ties to even; NaN stays
// NaN (quiet), ±Inf stays ±Inf, and values past the largest bfloat16 round
// to ±Inf.
__device__ __forceinline__ unsigned short bf16_round(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

#endif
