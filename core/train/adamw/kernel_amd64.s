//go:build amd64 && !purego

#include "textflag.h"

// func adamwAVX2(theta, grad, m, v *float32, n int, k *[9]float32)
//
// Per 8 lanes:
//	g  ← s·g
//	m  ← β1·m + (1−β1)·g
//	v  ← β2·v + (1−β2)·g²
//	θ  ← θ − ((lrDebiased·m)/(√(debias2·v) + ε) + lrDecay·θ)
TEXT ·adamwAVX2(SB), NOSPLIT, $0-48
	MOVQ theta+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ v+24(FP), R8
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), AX
	VBROADCASTSS 0(AX), Y0  // s
	VBROADCASTSS 4(AX), Y1  // β1
	VBROADCASTSS 8(AX), Y2  // 1−β1
	VBROADCASTSS 12(AX), Y3 // β2
	VBROADCASTSS 16(AX), Y4 // 1−β2
	VBROADCASTSS 20(AX), Y5 // lrDebiased
	VBROADCASTSS 24(AX), Y6 // debias2
	VBROADCASTSS 28(AX), Y7 // ε
	VBROADCASTSS 32(AX), Y8 // lrDecay
	XORQ BX, BX

loop:
	CMPQ BX, CX
	JGE  done
	VMULPS      (SI)(BX*4), Y0, Y9  // g·s
	VMULPS      (DX)(BX*4), Y1, Y10 // β1·m
	VFMADD231PS Y9, Y2, Y10         // m' = β1·m + (1−β1)·g
	VMOVUPS     Y10, (DX)(BX*4)
	VMULPS      Y9, Y9, Y11         // g²
	VMULPS      (R8)(BX*4), Y3, Y12 // β2·v
	VFMADD231PS Y11, Y4, Y12        // v' = β2·v + (1−β2)·g²
	VMOVUPS     Y12, (R8)(BX*4)
	VMULPS      Y12, Y6, Y13        // debias2·v'
	VSQRTPS     Y13, Y13
	VADDPS      Y7, Y13, Y13        // √(debias2·v') + ε
	VMULPS      Y10, Y5, Y14        // lrDebiased·m'
	VDIVPS      Y13, Y14, Y14       // (lrDebiased·m') / (√(debias2·v') + ε)
	VMOVUPS     (DI)(BX*4), Y15     // θ
	VFMADD231PS Y15, Y8, Y14        // + lrDecay·θ
	VSUBPS      Y14, Y15, Y15       // θ − step
	VMOVUPS     Y15, (DI)(BX*4)
	ADDQ        $8, BX
	JMP         loop

done:
	VZEROUPPER
	RET
