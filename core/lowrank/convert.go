package lowrank

import (
	"fmt"
	"math"
)

// ToLoRA converts a trained window adapter into a plain LoRA of rank 2r on the
// original weight W = initial.Base + Scale·B·A, with the same scale:
//
//	ΔW = Scale·(B′A′ − BA) = Scale·[B′ | −B]·[A′ ; A],
//	a2 = [A′ ; A]  (2r×n),   b2 = [B′ | −B]  (m×2r),
//
// so W + Scale·b2·a2 = Base + Scale·B′·A′ (PEFT's
// path_initial_model_for_weight_conversion). To keep the same scale at rank
// 2r, set α′ = Scale·2r (Scale·√(2r) with rsLoRA).
func ToLoRA[T Float](initial Adapter[T], trainedA, trainedB Matrix[T]) (a2, b2 Matrix[T], err error) {
	r := initial.Rank
	m, n := initial.B.Rows, initial.A.Cols
	if initial.A.Rows != r || initial.B.Cols != r || len(initial.A.Data) != r*n || len(initial.B.Data) != m*r {
		return a2, b2, fmt.Errorf("lowrank: layer %q: initial adapter has A %d×%d and B %d×%d, inconsistent with rank %d",
			initial.Layer, initial.A.Rows, initial.A.Cols, initial.B.Rows, initial.B.Cols, r)
	}
	if trainedA.Rows != r || trainedA.Cols != n || len(trainedA.Data) != r*n {
		return a2, b2, fmt.Errorf("lowrank: layer %q: trained A is %d×%d, expected %d×%d", initial.Layer, trainedA.Rows, trainedA.Cols, r, n)
	}
	if trainedB.Rows != m || trainedB.Cols != r || len(trainedB.Data) != m*r {
		return a2, b2, fmt.Errorf("lowrank: layer %q: trained B is %d×%d, expected %d×%d", initial.Layer, trainedB.Rows, trainedB.Cols, m, r)
	}
	a2 = NewMatrix[T](2*r, n)
	copy(a2.Data[:r*n], trainedA.Data)
	copy(a2.Data[r*n:], initial.A.Data)
	b2 = NewMatrix[T](m, 2*r)
	for i := 0; i < m; i++ {
		copy(b2.Data[i*2*r:i*2*r+r], trainedB.Data[i*r:(i+1)*r])
		for t := 0; t < r; t++ {
			b2.Data[i*2*r+r+t] = -initial.B.Data[i*r+t]
		}
	}
	return a2, b2, nil
}

// LoRAAlpha returns the α that gives a LoRA of the given rank the same scale as
// a (α = Scale·rank, or Scale·√rank with rsLoRA); use rank 2r with ToLoRA.
func (a Adapter[T]) LoRAAlpha(rank int) float64 {
	if a.RSLoRA {
		return a.Scale * math.Sqrt(float64(rank))
	}
	return a.Scale * float64(rank)
}
