//go:build amd64 && !purego

#include "textflag.h"

// Constants, each replicated over the 8 lanes of a YMM register.
DATA expHi<>+0(SB)/4, $0x42b20000
DATA expHi<>+4(SB)/4, $0x42b20000
DATA expHi<>+8(SB)/4, $0x42b20000
DATA expHi<>+12(SB)/4, $0x42b20000
DATA expHi<>+16(SB)/4, $0x42b20000
DATA expHi<>+20(SB)/4, $0x42b20000
DATA expHi<>+24(SB)/4, $0x42b20000
DATA expHi<>+28(SB)/4, $0x42b20000
GLOBL expHi<>(SB), RODATA|NOPTR, $32
DATA expLo<>+0(SB)/4, $0xc2d00000
DATA expLo<>+4(SB)/4, $0xc2d00000
DATA expLo<>+8(SB)/4, $0xc2d00000
DATA expLo<>+12(SB)/4, $0xc2d00000
DATA expLo<>+16(SB)/4, $0xc2d00000
DATA expLo<>+20(SB)/4, $0xc2d00000
DATA expLo<>+24(SB)/4, $0xc2d00000
DATA expLo<>+28(SB)/4, $0xc2d00000
GLOBL expLo<>(SB), RODATA|NOPTR, $32
DATA log2e<>+0(SB)/4, $0x3fb8aa3b
DATA log2e<>+4(SB)/4, $0x3fb8aa3b
DATA log2e<>+8(SB)/4, $0x3fb8aa3b
DATA log2e<>+12(SB)/4, $0x3fb8aa3b
DATA log2e<>+16(SB)/4, $0x3fb8aa3b
DATA log2e<>+20(SB)/4, $0x3fb8aa3b
DATA log2e<>+24(SB)/4, $0x3fb8aa3b
DATA log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL log2e<>(SB), RODATA|NOPTR, $32
DATA half<>+0(SB)/4, $0x3f000000
DATA half<>+4(SB)/4, $0x3f000000
DATA half<>+8(SB)/4, $0x3f000000
DATA half<>+12(SB)/4, $0x3f000000
DATA half<>+16(SB)/4, $0x3f000000
DATA half<>+20(SB)/4, $0x3f000000
DATA half<>+24(SB)/4, $0x3f000000
DATA half<>+28(SB)/4, $0x3f000000
GLOBL half<>(SB), RODATA|NOPTR, $32
DATA expC1<>+0(SB)/4, $0x3f318000
DATA expC1<>+4(SB)/4, $0x3f318000
DATA expC1<>+8(SB)/4, $0x3f318000
DATA expC1<>+12(SB)/4, $0x3f318000
DATA expC1<>+16(SB)/4, $0x3f318000
DATA expC1<>+20(SB)/4, $0x3f318000
DATA expC1<>+24(SB)/4, $0x3f318000
DATA expC1<>+28(SB)/4, $0x3f318000
GLOBL expC1<>(SB), RODATA|NOPTR, $32
DATA expC2<>+0(SB)/4, $0xb95e8083
DATA expC2<>+4(SB)/4, $0xb95e8083
DATA expC2<>+8(SB)/4, $0xb95e8083
DATA expC2<>+12(SB)/4, $0xb95e8083
DATA expC2<>+16(SB)/4, $0xb95e8083
DATA expC2<>+20(SB)/4, $0xb95e8083
DATA expC2<>+24(SB)/4, $0xb95e8083
DATA expC2<>+28(SB)/4, $0xb95e8083
GLOBL expC2<>(SB), RODATA|NOPTR, $32
DATA expP0<>+0(SB)/4, $0x39506967
DATA expP0<>+4(SB)/4, $0x39506967
DATA expP0<>+8(SB)/4, $0x39506967
DATA expP0<>+12(SB)/4, $0x39506967
DATA expP0<>+16(SB)/4, $0x39506967
DATA expP0<>+20(SB)/4, $0x39506967
DATA expP0<>+24(SB)/4, $0x39506967
DATA expP0<>+28(SB)/4, $0x39506967
GLOBL expP0<>(SB), RODATA|NOPTR, $32
DATA expP1<>+0(SB)/4, $0x3ab743ce
DATA expP1<>+4(SB)/4, $0x3ab743ce
DATA expP1<>+8(SB)/4, $0x3ab743ce
DATA expP1<>+12(SB)/4, $0x3ab743ce
DATA expP1<>+16(SB)/4, $0x3ab743ce
DATA expP1<>+20(SB)/4, $0x3ab743ce
DATA expP1<>+24(SB)/4, $0x3ab743ce
DATA expP1<>+28(SB)/4, $0x3ab743ce
GLOBL expP1<>(SB), RODATA|NOPTR, $32
DATA expP2<>+0(SB)/4, $0x3c088908
DATA expP2<>+4(SB)/4, $0x3c088908
DATA expP2<>+8(SB)/4, $0x3c088908
DATA expP2<>+12(SB)/4, $0x3c088908
DATA expP2<>+16(SB)/4, $0x3c088908
DATA expP2<>+20(SB)/4, $0x3c088908
DATA expP2<>+24(SB)/4, $0x3c088908
DATA expP2<>+28(SB)/4, $0x3c088908
GLOBL expP2<>(SB), RODATA|NOPTR, $32
DATA expP3<>+0(SB)/4, $0x3d2aa9c1
DATA expP3<>+4(SB)/4, $0x3d2aa9c1
DATA expP3<>+8(SB)/4, $0x3d2aa9c1
DATA expP3<>+12(SB)/4, $0x3d2aa9c1
DATA expP3<>+16(SB)/4, $0x3d2aa9c1
DATA expP3<>+20(SB)/4, $0x3d2aa9c1
DATA expP3<>+24(SB)/4, $0x3d2aa9c1
DATA expP3<>+28(SB)/4, $0x3d2aa9c1
GLOBL expP3<>(SB), RODATA|NOPTR, $32
DATA expP4<>+0(SB)/4, $0x3e2aaaaa
DATA expP4<>+4(SB)/4, $0x3e2aaaaa
DATA expP4<>+8(SB)/4, $0x3e2aaaaa
DATA expP4<>+12(SB)/4, $0x3e2aaaaa
DATA expP4<>+16(SB)/4, $0x3e2aaaaa
DATA expP4<>+20(SB)/4, $0x3e2aaaaa
DATA expP4<>+24(SB)/4, $0x3e2aaaaa
DATA expP4<>+28(SB)/4, $0x3e2aaaaa
GLOBL expP4<>(SB), RODATA|NOPTR, $32
DATA expP5<>+0(SB)/4, $0x3f000000
DATA expP5<>+4(SB)/4, $0x3f000000
DATA expP5<>+8(SB)/4, $0x3f000000
DATA expP5<>+12(SB)/4, $0x3f000000
DATA expP5<>+16(SB)/4, $0x3f000000
DATA expP5<>+20(SB)/4, $0x3f000000
DATA expP5<>+24(SB)/4, $0x3f000000
DATA expP5<>+28(SB)/4, $0x3f000000
GLOBL expP5<>(SB), RODATA|NOPTR, $32
DATA one<>+0(SB)/4, $0x3f800000
DATA one<>+4(SB)/4, $0x3f800000
DATA one<>+8(SB)/4, $0x3f800000
DATA one<>+12(SB)/4, $0x3f800000
DATA one<>+16(SB)/4, $0x3f800000
DATA one<>+20(SB)/4, $0x3f800000
DATA one<>+24(SB)/4, $0x3f800000
DATA one<>+28(SB)/4, $0x3f800000
GLOBL one<>(SB), RODATA|NOPTR, $32
DATA i127<>+0(SB)/4, $0x0000007f
DATA i127<>+4(SB)/4, $0x0000007f
DATA i127<>+8(SB)/4, $0x0000007f
DATA i127<>+12(SB)/4, $0x0000007f
DATA i127<>+16(SB)/4, $0x0000007f
DATA i127<>+20(SB)/4, $0x0000007f
DATA i127<>+24(SB)/4, $0x0000007f
DATA i127<>+28(SB)/4, $0x0000007f
GLOBL i127<>(SB), RODATA|NOPTR, $32
DATA absMask<>+0(SB)/4, $0x7fffffff
DATA absMask<>+4(SB)/4, $0x7fffffff
DATA absMask<>+8(SB)/4, $0x7fffffff
DATA absMask<>+12(SB)/4, $0x7fffffff
DATA absMask<>+16(SB)/4, $0x7fffffff
DATA absMask<>+20(SB)/4, $0x7fffffff
DATA absMask<>+24(SB)/4, $0x7fffffff
DATA absMask<>+28(SB)/4, $0x7fffffff
GLOBL absMask<>(SB), RODATA|NOPTR, $32
DATA signMask<>+0(SB)/4, $0x80000000
DATA signMask<>+4(SB)/4, $0x80000000
DATA signMask<>+8(SB)/4, $0x80000000
DATA signMask<>+12(SB)/4, $0x80000000
DATA signMask<>+16(SB)/4, $0x80000000
DATA signMask<>+20(SB)/4, $0x80000000
DATA signMask<>+24(SB)/4, $0x80000000
DATA signMask<>+28(SB)/4, $0x80000000
GLOBL signMask<>(SB), RODATA|NOPTR, $32
DATA four<>+0(SB)/4, $0x40800000
DATA four<>+4(SB)/4, $0x40800000
DATA four<>+8(SB)/4, $0x40800000
DATA four<>+12(SB)/4, $0x40800000
DATA four<>+16(SB)/4, $0x40800000
DATA four<>+20(SB)/4, $0x40800000
DATA four<>+24(SB)/4, $0x40800000
DATA four<>+28(SB)/4, $0x40800000
GLOBL four<>(SB), RODATA|NOPTR, $32
DATA twoHalf<>+0(SB)/4, $0x40200000
DATA twoHalf<>+4(SB)/4, $0x40200000
DATA twoHalf<>+8(SB)/4, $0x40200000
DATA twoHalf<>+12(SB)/4, $0x40200000
DATA twoHalf<>+16(SB)/4, $0x40200000
DATA twoHalf<>+20(SB)/4, $0x40200000
DATA twoHalf<>+24(SB)/4, $0x40200000
DATA twoHalf<>+28(SB)/4, $0x40200000
GLOBL twoHalf<>(SB), RODATA|NOPTR, $32
DATA twoThirds<>+0(SB)/4, $0x3f2aaaab
DATA twoThirds<>+4(SB)/4, $0x3f2aaaab
DATA twoThirds<>+8(SB)/4, $0x3f2aaaab
DATA twoThirds<>+12(SB)/4, $0x3f2aaaab
DATA twoThirds<>+16(SB)/4, $0x3f2aaaab
DATA twoThirds<>+20(SB)/4, $0x3f2aaaab
DATA twoThirds<>+24(SB)/4, $0x3f2aaaab
DATA twoThirds<>+28(SB)/4, $0x3f2aaaab
GLOBL twoThirds<>(SB), RODATA|NOPTR, $32

// func expAVX2(out, in *float32, n int)
//
// out[i] = e^in[i] for i < n (n a multiple of 8), in float32 with FMA:
// Cephes expf with IEEE overflow to +Inf, gradual underflow to 0 and NaN
// passed through.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   expDone

expLoop:
	VMOVUPS (SI), Y0
	VMINPS expHi<>(SB), Y0, Y1
	VMAXPS expLo<>(SB), Y1, Y1
	// e^Y1: n = floor(Y1·log2e + ½), r = Y1 − n·ln2 (two-part ln2),
	// e^r by the Cephes polynomial, scaled by 2^(n>>1)·2^(n−n>>1).
	VMOVUPS half<>(SB), Y3
	VFMADD231PS log2e<>(SB), Y1, Y3
	VROUNDPS $1, Y3, Y3
	VFNMADD231PS expC1<>(SB), Y3, Y1
	VFNMADD231PS expC2<>(SB), Y3, Y1
	VMOVUPS expP0<>(SB), Y2
	VFMADD213PS expP1<>(SB), Y1, Y2
	VFMADD213PS expP2<>(SB), Y1, Y2
	VFMADD213PS expP3<>(SB), Y1, Y2
	VFMADD213PS expP4<>(SB), Y1, Y2
	VFMADD213PS expP5<>(SB), Y1, Y2
	VMULPS Y1, Y1, Y4
	VFMADD213PS Y1, Y4, Y2
	VADDPS one<>(SB), Y2, Y2
	VCVTTPS2DQ Y3, Y3
	VPSRAD $1, Y3, Y4
	VPSUBD Y4, Y3, Y3
	VPADDD i127<>(SB), Y4, Y4
	VPSLLD $23, Y4, Y4
	VPADDD i127<>(SB), Y3, Y3
	VPSLLD $23, Y3, Y3
	VMULPS Y4, Y2, Y2
	VMULPS Y3, Y2, Y2
	VCMPPS $3, Y0, Y0, Y5
	VBLENDVPS Y5, Y0, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  expLoop

expDone:
	VZEROUPPER
	RET

// func erfAVX2(out, in *float32, n int, small, large *float32)
//
// out[i] = erf(in[i]) for i < n (n a multiple of 8). With a = |x|:
//   a < 1:  erf = a·S(2a² − 1)                 (S: degree-7 polynomial)
//   a ≥ 1:  erf = 1 − e^(−a²)·L((min(a,4) − 2.5)/1.5)  (L: degree-11 polynomial)
// with the sign of x restored and NaN passed through. small and large hold
// the coefficients (constant term first), each replicated over 8 lanes.
TEXT ·erfAVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ small+24(FP), R8
	MOVQ large+32(FP), R9
	SHRQ $3, CX
	JZ   erfDone

erfLoop:
	VMOVUPS (SI), Y0
	VANDPS absMask<>(SB), Y0, Y1
	// Small branch → Y4.
	VMULPS Y1, Y1, Y2
	VADDPS Y2, Y2, Y3
	VSUBPS one<>(SB), Y3, Y3
	VMOVUPS 224(R8), Y4
	VFMADD213PS 192(R8), Y3, Y4
	VFMADD213PS 160(R8), Y3, Y4
	VFMADD213PS 128(R8), Y3, Y4
	VFMADD213PS 96(R8), Y3, Y4
	VFMADD213PS 64(R8), Y3, Y4
	VFMADD213PS 32(R8), Y3, Y4
	VFMADD213PS 0(R8), Y3, Y4
	VMULPS Y1, Y4, Y4
	// Large branch → Y6.
	VMINPS four<>(SB), Y1, Y5
	VSUBPS twoHalf<>(SB), Y5, Y5
	VMULPS twoThirds<>(SB), Y5, Y5
	VMOVUPS 352(R9), Y6
	VFMADD213PS 320(R9), Y5, Y6
	VFMADD213PS 288(R9), Y5, Y6
	VFMADD213PS 256(R9), Y5, Y6
	VFMADD213PS 224(R9), Y5, Y6
	VFMADD213PS 192(R9), Y5, Y6
	VFMADD213PS 160(R9), Y5, Y6
	VFMADD213PS 128(R9), Y5, Y6
	VFMADD213PS 96(R9), Y5, Y6
	VFMADD213PS 64(R9), Y5, Y6
	VFMADD213PS 32(R9), Y5, Y6
	VFMADD213PS 0(R9), Y5, Y6
	VXORPS signMask<>(SB), Y2, Y7
	VMAXPS expLo<>(SB), Y7, Y7
	// e^Y7: n = floor(Y7·log2e + ½), r = Y7 − n·ln2 (two-part ln2),
	// e^r by the Cephes polynomial, scaled by 2^(n>>1)·2^(n−n>>1).
	VMOVUPS half<>(SB), Y9
	VFMADD231PS log2e<>(SB), Y7, Y9
	VROUNDPS $1, Y9, Y9
	VFNMADD231PS expC1<>(SB), Y9, Y7
	VFNMADD231PS expC2<>(SB), Y9, Y7
	VMOVUPS expP0<>(SB), Y8
	VFMADD213PS expP1<>(SB), Y7, Y8
	VFMADD213PS expP2<>(SB), Y7, Y8
	VFMADD213PS expP3<>(SB), Y7, Y8
	VFMADD213PS expP4<>(SB), Y7, Y8
	VFMADD213PS expP5<>(SB), Y7, Y8
	VMULPS Y7, Y7, Y10
	VFMADD213PS Y7, Y10, Y8
	VADDPS one<>(SB), Y8, Y8
	VCVTTPS2DQ Y9, Y9
	VPSRAD $1, Y9, Y10
	VPSUBD Y10, Y9, Y9
	VPADDD i127<>(SB), Y10, Y10
	VPSLLD $23, Y10, Y10
	VPADDD i127<>(SB), Y9, Y9
	VPSLLD $23, Y9, Y9
	VMULPS Y10, Y8, Y8
	VMULPS Y9, Y8, Y8
	VFNMADD213PS one<>(SB), Y8, Y6
	// Select, restore the sign, pass NaN through.
	VCMPPS $1, one<>(SB), Y1, Y9
	VBLENDVPS Y9, Y4, Y6, Y6
	VANDPS signMask<>(SB), Y0, Y10
	VORPS Y10, Y6, Y6
	VCMPPS $3, Y0, Y0, Y11
	VBLENDVPS Y11, Y0, Y6, Y6
	VMOVUPS Y6, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  erfLoop

erfDone:
	VZEROUPPER
	RET
