//go:build amd64 && !purego

package gokernels

import "github.com/gomlx/gomlx/backends"

// Row loops (rows_amd64.s): out[r·length + i] = vec[r·length + i] ∘ sc[r]
// (or sc[r] ∘ vec[…] for the R variants), r < rows, i < length.
type rowLoop func(out, vec, sc *float32, rows, length int, mask *int32)

//go:noescape
func rowAddAVX2(out, vec, sc *float32, rows, length int, mask *int32)

//go:noescape
func rowSubAVX2(out, vec, sc *float32, rows, length int, mask *int32)

//go:noescape
func rowRSubAVX2(out, vec, sc *float32, rows, length int, mask *int32)

//go:noescape
func rowMulAVX2(out, vec, sc *float32, rows, length int, mask *int32)

//go:noescape
func rowDivAVX2(out, vec, sc *float32, rows, length int, mask *int32)

//go:noescape
func rowRDivAVX2(out, vec, sc *float32, rows, length int, mask *int32)

// rowLoopFor returns the vector row loop of op (scalarB: vec ∘ s, else
// s ∘ vec), or nil.
func rowLoopFor(op backends.OpType, scalarB bool) rowLoop {
	if !useAsm {
		return nil
	}
	switch {
	case op == backends.OpTypeAdd:
		return rowAddAVX2
	case op == backends.OpTypeMul:
		return rowMulAVX2
	case op == backends.OpTypeSub && scalarB:
		return rowSubAVX2
	case op == backends.OpTypeSub:
		return rowRSubAVX2
	case op == backends.OpTypeDiv && scalarB:
		return rowDivAVX2
	case op == backends.OpTypeDiv:
		return rowRDivAVX2
	}
	return nil
}

// rowMask is the lane mask of a row's last length mod 8 elements.
func rowMask(length int) *int32 { return &edgeMasks[nr-length%8] }

//go:noescape
func rowSumsAVX2(dst, src *float32, rows, length int)

//go:noescape
func colSumsAVX2(dst, src *float32, rows, stride, cols int)

// rowSums adds to dst[r] the sum of row r of src (rows contiguous, length
// long), as sumVec sums a row, when the vector loop applies (length a
// multiple of 8); it reports whether it did.
func rowSums(dst, src []float32, length int) bool {
	if !useAsm || length%8 != 0 || len(dst) == 0 || length == 0 {
		return false
	}
	_ = src[len(dst)*length-1]
	rowSumsAVX2(&dst[0], &src[0], len(dst), length)
	return true
}

// colSums adds to dst[j] the sum over r < rows of src[r·stride + j]
// (j < len(dst), a multiple of 8), each column in row order, and reports
// whether it did (false: nothing done).
func colSums(dst, src []float32, rows, stride int) bool {
	if !useAsm || len(dst)%8 != 0 || len(dst) == 0 || rows == 0 {
		return false
	}
	_ = src[(rows-1)*stride+len(dst)-1]
	colSumsAVX2(&dst[0], &src[0], rows, stride, len(dst))
	return true
}
