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
