package lowrank

import "math"

// DoRAMagnitude returns DoRA's initial magnitude vector for an adapter, as
// PEFT's DoraLinearLayer.get_weight_norm: the L2 norm over the input dimension
// of each output row of the adapted weight,
//
//	mag_i = ‖(Base + Scale·B·A)[i, :]‖₂,   i = 0 … m−1   (length m = out),
//
// accumulated in float64. For every method here Base + Scale·B·A = W, so this is
// the row norms of the original weight to rounding.
func DoRAMagnitude[T Float](a Adapter[T]) []T {
	m, n, r := a.Base.Rows, a.Base.Cols, a.Rank
	mag := make([]T, m)
	row := make([]float64, n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			row[j] = float64(a.Base.Data[i*n+j])
		}
		for t := 0; t < r; t++ {
			bt := a.Scale * float64(a.B.Data[i*r+t])
			if bt == 0 {
				continue
			}
			at := a.A.Data[t*n : (t+1)*n]
			for j := range row {
				row[j] += bt * float64(at[j])
			}
		}
		var ss float64
		for _, v := range row {
			ss += v * v
		}
		mag[i] = T(math.Sqrt(ss))
	}
	return mag
}
