//go:build !purego

#include "textflag.h"

// The constants of expNonPos, each as eight float32 (int32 for 127).
#define C8(name, v) \
	DATA name+0(SB)/4, $v; DATA name+4(SB)/4, $v; DATA name+8(SB)/4, $v; DATA name+12(SB)/4, $v; \
	DATA name+16(SB)/4, $v; DATA name+20(SB)/4, $v; DATA name+24(SB)/4, $v; DATA name+28(SB)/4, $v; \
	GLOBL name(SB), RODATA|NOPTR, $32

C8(expLog2e<>, 0x3fb8aa3b)
C8(expHalf<>, 0x3f000000)
C8(expC1<>, 0x3f318000)
C8(expC2<>, 0xb95e8083)
C8(expLo<>, 0xc2aeac4f)
C8(expP0<>, 0x39506967)
C8(expP1<>, 0x3ab743ce)
C8(expP2<>, 0x3c088908)
C8(expP3<>, 0x3d2aa9c1)
C8(expP4<>, 0x3e2aaaaa)
C8(expP5<>, 0x3f000000)
C8(expOne<>, 0x3f800000)
C8(exp127<>, 0x0000007f)

// func expSub32x8(z, e *float32, n int, m float32, s *[8]float64)
//
// For i in [0, n) step 8: x = z[i:i+8] − m; the terms of expNonPos, each
// operation as Go does it (no FMA); e[i:i+8] = terms; s[k] += float64(term k).
TEXT ·expSub32x8(SB), NOSPLIT, $0-40
	MOVQ         z+0(FP), SI
	MOVQ         e+8(FP), DI
	MOVQ         n+16(FP), CX
	VBROADCASTSS m+24(FP), Y15
	MOVQ         s+32(FP), DX
	VMOVUPS      expLog2e<>(SB), Y14
	VMOVUPS      expHalf<>(SB), Y13
	VMOVUPS      expC1<>(SB), Y12
	VMOVUPS      expC2<>(SB), Y11
	VMOVUPS      expLo<>(SB), Y10
	VMOVUPS      expOne<>(SB), Y9
	VMOVUPS      exp127<>(SB), Y8
	VMOVUPD      0(DX), Y0                   // lanes 0-3
	VMOVUPD      32(DX), Y1                  // lanes 4-7

loop:
	CMPQ         CX, $8
	JLT          done
	VMOVUPS      (SI), Y2
	VSUBPS       Y15, Y2, Y2                 // x = z − m
	VMULPS       Y14, Y2, Y3                 // x·log2e
	VSUBPS       Y3, Y13, Y3                 // 0.5 − x·log2e
	VCVTTPS2DQ   Y3, Y3                      // int32(...)
	VPXOR        Y4, Y4, Y4
	VPSUBD       Y3, Y4, Y3                  // n = −int32(...)
	VCVTDQ2PS    Y3, Y4                      // f = float32(n)
	VMULPS       Y12, Y4, Y5                 // f·c1
	VSUBPS       Y5, Y2, Y5                  // x − f·c1
	VMULPS       Y11, Y4, Y6                 // f·c2
	VSUBPS       Y6, Y5, Y5                  // r = x − f·c1 − f·c2
	VMULPS       expP0<>(SB), Y5, Y6         // p = p0·r
	VADDPS       expP1<>(SB), Y6, Y6         // + p1
	VMULPS       Y5, Y6, Y6
	VADDPS       expP2<>(SB), Y6, Y6
	VMULPS       Y5, Y6, Y6
	VADDPS       expP3<>(SB), Y6, Y6
	VMULPS       Y5, Y6, Y6
	VADDPS       expP4<>(SB), Y6, Y6
	VMULPS       Y5, Y6, Y6
	VADDPS       expP5<>(SB), Y6, Y6
	VMULPS       Y5, Y6, Y6                  // p·r
	VMULPS       Y5, Y6, Y6                  // ·r
	VADDPS       Y5, Y6, Y6                  // + r
	VADDPS       Y9, Y6, Y6                  // + 1
	VPADDD       Y8, Y3, Y3                  // n + 127
	VPSLLD       $23, Y3, Y3                 // 2^n as float32 bits
	VMULPS       Y3, Y6, Y6                  // y
	VCMPPS       $1, Y10, Y2, Y7             // x < lo (false for NaN)
	VANDNPS      Y6, Y7, Y6                  // 0 where x < lo
	VMOVUPS      Y6, (DI)
	VCVTPS2PD    X6, Y7
	VADDPD       Y7, Y0, Y0
	VEXTRACTF128 $1, Y6, X6
	VCVTPS2PD    X6, Y7
	VADDPD       Y7, Y1, Y1
	ADDQ         $32, SI
	ADDQ         $32, DI
	SUBQ         $8, CX
	JMP          loop

done:
	VMOVUPD      Y0, 0(DX)
	VMOVUPD      Y1, 32(DX)
	VZEROUPPER
	RET
