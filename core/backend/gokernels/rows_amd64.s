//go:build amd64 && !purego

#include "textflag.h"

// Row loops of the binary executors for an operand that is one value per
// row: rows rows of length elements, row r of out and vec at r·length, its
// value s at sc[r]. Full 8-lane vectors, then the row's last length mod 8
// elements under mask (mask: 8 int32 lanes, −1 for the tail's lanes).

// func rowAddAVX2(out, vec, sc *float32, rows, length int, mask *int32): out = vec + s
TEXT ·rowAddAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vec+8(FP), SI
	MOVQ sc+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ length+32(FP), R10
	MOVQ mask+40(FP), AX
	VMOVDQU (AX), Y14
	MOVQ R10, R11
	SHRQ $3, R10
	ANDQ $7, R11
	SHLQ $2, R11
rowAddAVX2Row:
	TESTQ R8, R8
	JZ   rowAddAVX2Done
	VBROADCASTSS (DX), Y15
	MOVQ R10, CX
rowAddAVX2Vec:
	TESTQ CX, CX
	JZ   rowAddAVX2Tail
	VMOVUPS (SI), Y0
	VADDPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  rowAddAVX2Vec
rowAddAVX2Tail:
	TESTQ R11, R11
	JZ   rowAddAVX2Next
	VMASKMOVPS (SI), Y14, Y0
	VADDPS Y15, Y0, Y0
	VMASKMOVPS Y0, Y14, (DI)
	ADDQ R11, SI
	ADDQ R11, DI
rowAddAVX2Next:
	ADDQ $4, DX
	DECQ R8
	JMP  rowAddAVX2Row
rowAddAVX2Done:
	VZEROUPPER
	RET

// func rowSubAVX2(out, vec, sc *float32, rows, length int, mask *int32): out = vec − s
TEXT ·rowSubAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vec+8(FP), SI
	MOVQ sc+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ length+32(FP), R10
	MOVQ mask+40(FP), AX
	VMOVDQU (AX), Y14
	MOVQ R10, R11
	SHRQ $3, R10
	ANDQ $7, R11
	SHLQ $2, R11
rowSubAVX2Row:
	TESTQ R8, R8
	JZ   rowSubAVX2Done
	VBROADCASTSS (DX), Y15
	MOVQ R10, CX
rowSubAVX2Vec:
	TESTQ CX, CX
	JZ   rowSubAVX2Tail
	VMOVUPS (SI), Y0
	VSUBPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  rowSubAVX2Vec
rowSubAVX2Tail:
	TESTQ R11, R11
	JZ   rowSubAVX2Next
	VMASKMOVPS (SI), Y14, Y0
	VSUBPS Y15, Y0, Y0
	VMASKMOVPS Y0, Y14, (DI)
	ADDQ R11, SI
	ADDQ R11, DI
rowSubAVX2Next:
	ADDQ $4, DX
	DECQ R8
	JMP  rowSubAVX2Row
rowSubAVX2Done:
	VZEROUPPER
	RET

// func rowRSubAVX2(out, vec, sc *float32, rows, length int, mask *int32): out = s − vec
TEXT ·rowRSubAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vec+8(FP), SI
	MOVQ sc+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ length+32(FP), R10
	MOVQ mask+40(FP), AX
	VMOVDQU (AX), Y14
	MOVQ R10, R11
	SHRQ $3, R10
	ANDQ $7, R11
	SHLQ $2, R11
rowRSubAVX2Row:
	TESTQ R8, R8
	JZ   rowRSubAVX2Done
	VBROADCASTSS (DX), Y15
	MOVQ R10, CX
rowRSubAVX2Vec:
	TESTQ CX, CX
	JZ   rowRSubAVX2Tail
	VMOVUPS (SI), Y0
	VSUBPS Y0, Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  rowRSubAVX2Vec
rowRSubAVX2Tail:
	TESTQ R11, R11
	JZ   rowRSubAVX2Next
	VMASKMOVPS (SI), Y14, Y0
	VSUBPS Y0, Y15, Y0
	VMASKMOVPS Y0, Y14, (DI)
	ADDQ R11, SI
	ADDQ R11, DI
rowRSubAVX2Next:
	ADDQ $4, DX
	DECQ R8
	JMP  rowRSubAVX2Row
rowRSubAVX2Done:
	VZEROUPPER
	RET

// func rowMulAVX2(out, vec, sc *float32, rows, length int, mask *int32): out = vec · s
TEXT ·rowMulAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vec+8(FP), SI
	MOVQ sc+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ length+32(FP), R10
	MOVQ mask+40(FP), AX
	VMOVDQU (AX), Y14
	MOVQ R10, R11
	SHRQ $3, R10
	ANDQ $7, R11
	SHLQ $2, R11
rowMulAVX2Row:
	TESTQ R8, R8
	JZ   rowMulAVX2Done
	VBROADCASTSS (DX), Y15
	MOVQ R10, CX
rowMulAVX2Vec:
	TESTQ CX, CX
	JZ   rowMulAVX2Tail
	VMOVUPS (SI), Y0
	VMULPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  rowMulAVX2Vec
rowMulAVX2Tail:
	TESTQ R11, R11
	JZ   rowMulAVX2Next
	VMASKMOVPS (SI), Y14, Y0
	VMULPS Y15, Y0, Y0
	VMASKMOVPS Y0, Y14, (DI)
	ADDQ R11, SI
	ADDQ R11, DI
rowMulAVX2Next:
	ADDQ $4, DX
	DECQ R8
	JMP  rowMulAVX2Row
rowMulAVX2Done:
	VZEROUPPER
	RET

// func rowDivAVX2(out, vec, sc *float32, rows, length int, mask *int32): out = vec / s
TEXT ·rowDivAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vec+8(FP), SI
	MOVQ sc+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ length+32(FP), R10
	MOVQ mask+40(FP), AX
	VMOVDQU (AX), Y14
	MOVQ R10, R11
	SHRQ $3, R10
	ANDQ $7, R11
	SHLQ $2, R11
rowDivAVX2Row:
	TESTQ R8, R8
	JZ   rowDivAVX2Done
	VBROADCASTSS (DX), Y15
	MOVQ R10, CX
rowDivAVX2Vec:
	TESTQ CX, CX
	JZ   rowDivAVX2Tail
	VMOVUPS (SI), Y0
	VDIVPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  rowDivAVX2Vec
rowDivAVX2Tail:
	TESTQ R11, R11
	JZ   rowDivAVX2Next
	VMASKMOVPS (SI), Y14, Y0
	VDIVPS Y15, Y0, Y0
	VMASKMOVPS Y0, Y14, (DI)
	ADDQ R11, SI
	ADDQ R11, DI
rowDivAVX2Next:
	ADDQ $4, DX
	DECQ R8
	JMP  rowDivAVX2Row
rowDivAVX2Done:
	VZEROUPPER
	RET

// func rowRDivAVX2(out, vec, sc *float32, rows, length int, mask *int32): out = s / vec
TEXT ·rowRDivAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vec+8(FP), SI
	MOVQ sc+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ length+32(FP), R10
	MOVQ mask+40(FP), AX
	VMOVDQU (AX), Y14
	MOVQ R10, R11
	SHRQ $3, R10
	ANDQ $7, R11
	SHLQ $2, R11
rowRDivAVX2Row:
	TESTQ R8, R8
	JZ   rowRDivAVX2Done
	VBROADCASTSS (DX), Y15
	MOVQ R10, CX
rowRDivAVX2Vec:
	TESTQ CX, CX
	JZ   rowRDivAVX2Tail
	VMOVUPS (SI), Y0
	VDIVPS Y0, Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP  rowRDivAVX2Vec
rowRDivAVX2Tail:
	TESTQ R11, R11
	JZ   rowRDivAVX2Next
	VMASKMOVPS (SI), Y14, Y0
	VDIVPS Y0, Y15, Y0
	VMASKMOVPS Y0, Y14, (DI)
	ADDQ R11, SI
	ADDQ R11, DI
rowRDivAVX2Next:
	ADDQ $4, DX
	DECQ R8
	JMP  rowRDivAVX2Row
rowRDivAVX2Done:
	VZEROUPPER
	RET

// func rowSumsAVX2(dst, src *float32, rows, length int)
//
// dst[r] += Σ src[r·length : (r+1)·length] for r < rows, length a multiple
// of 8, each row summed exactly as sumAVX2 sums it (four 8-lane partial
// sums over 32-element blocks, then the remaining 8-element blocks into the
// first, then combined).
TEXT ·rowSumsAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rows+16(FP), R8
	MOVQ length+24(FP), R9
	MOVQ R9, R10
	SHRQ $5, R10
	ANDQ $31, R9
	SHRQ $3, R9
rowSumsRow:
	TESTQ R8, R8
	JZ   rowSumsDone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ R10, BX
	MOVQ R9, CX
	TESTQ BX, BX
	JZ   rowSumsTail
rowSumsLoop32:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	ADDQ $128, SI
	DECQ BX
	JNZ  rowSumsLoop32
rowSumsTail:
	TESTQ CX, CX
	JZ   rowSumsCombine
rowSumsLoop8:
	VADDPS (SI), Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JNZ  rowSumsLoop8
rowSumsCombine:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VADDSS (DI), X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	DECQ R8
	JMP  rowSumsRow
rowSumsDone:
	VZEROUPPER
	RET

// func colSumsAVX2(dst, src *float32, rows, stride, cols int)
//
// dst[j] += Σ_r src[r·stride + j] for j < cols (a multiple of 8), r < rows:
// the reduction of the leading axes (bias gradients), 32 then 8 columns at
// a time, each column summed over the rows in order.
TEXT ·colSumsAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rows+16(FP), R8
	MOVQ stride+24(FP), R9
	MOVQ cols+32(FP), R10
	SHLQ $2, R9
colSumsBlock32:
	CMPQ R10, $32
	JLT  colSumsBlock8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ SI, AX
	MOVQ R8, CX
	TESTQ CX, CX
	JZ   colSumsStore32
colSumsLoop32:
	VADDPS (AX), Y0, Y0
	VADDPS 32(AX), Y1, Y1
	VADDPS 64(AX), Y2, Y2
	VADDPS 96(AX), Y3, Y3
	ADDQ R9, AX
	DECQ CX
	JNZ  colSumsLoop32
colSumsStore32:
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
	VADDPS 64(DI), Y2, Y2
	VADDPS 96(DI), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, SI
	SUBQ $32, R10
	JMP  colSumsBlock32
colSumsBlock8:
	CMPQ R10, $8
	JLT  colSumsDone
	VXORPS Y0, Y0, Y0
	MOVQ SI, AX
	MOVQ R8, CX
	TESTQ CX, CX
	JZ   colSumsStore8
colSumsLoop8:
	VADDPS (AX), Y0, Y0
	ADDQ R9, AX
	DECQ CX
	JNZ  colSumsLoop8
colSumsStore8:
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	SUBQ $8, R10
	JMP  colSumsBlock8
colSumsDone:
	VZEROUPPER
	RET
