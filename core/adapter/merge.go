package adapter

import (
	"fmt"
	"math"

	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/lowrank"
)

// Merged returns the layer's current merged weight W₁ (m×n), computed on the
// host in float64 from the variables in ctx:
//
//	low-rank methods:  W₁ = Wres + scale·B·A
//	DoRA:              W₁ = diag(mag ⊘ ‖W′‖_row)·W′,  W′ = W + scale·B·A
//	full, head:        W₁ = W
//
// so that the layer computes y = x·W₁ᵀ + b.
func (a *Adapted) Merged(ctx *mlctx.Context, name string) (lowrank.Matrix[float64], error) {
	st, ok := a.byName[name]
	if !ok {
		return lowrank.Matrix[float64]{}, fmt.Errorf("adapter: layer %q is not adapted", name)
	}
	return st.Merged(ctx)
}

// Merged is Adapted.Merged for this layer.
func (st *LayerState) Merged(ctx *mlctx.Context) (lowrank.Matrix[float64], error) {
	read := func(v string) (lowrank.Matrix[float64], error) {
		vr := variable(ctx, st.Name, v)
		if vr == nil {
			return lowrank.Matrix[float64]{}, fmt.Errorf("adapter: layer %q has no variable %s", st.Name, v)
		}
		if v == MagnitudeName {
			data, err := readValues(vr)
			if err != nil {
				return lowrank.Matrix[float64]{}, fmt.Errorf("adapter: layer %q: %w", st.Name, err)
			}
			return lowrank.MatrixFrom(len(data), 1, data)
		}
		m, err := readMatrix(vr)
		if err != nil {
			return m, fmt.Errorf("adapter: layer %q: %w", st.Name, err)
		}
		return m, nil
	}
	w, err := read(WeightName)
	if err != nil || !st.Config.IsAdapter() {
		return w, err
	}
	aM, err := read(LoRAAName)
	if err != nil {
		return w, err
	}
	bM, err := read(LoRABName)
	if err != nil {
		return w, err
	}
	merged := MergeLoRA(w, aM, bM, st.Scale)
	if st.Config.Method != MethodDoRA {
		return merged, nil
	}
	mag, err := read(MagnitudeName)
	if err != nil {
		return w, err
	}
	return ScaleRows(merged, mag.Data), nil
}

// MergeLoRA returns Wres + scale·B·A (m×n) in float64: Wres m×n, A r×n, B m×r.
func MergeLoRA(wres, a, b lowrank.Matrix[float64], scale float64) lowrank.Matrix[float64] {
	m, n, r := wres.Rows, wres.Cols, a.Rows
	out := wres.Clone()
	for i := 0; i < m; i++ {
		row := out.Data[i*n : (i+1)*n]
		for t := 0; t < r; t++ {
			bt := scale * b.Data[i*r+t]
			if bt == 0 {
				continue
			}
			at := a.Data[t*n : (t+1)*n]
			for j := range row {
				row[j] += bt * at[j]
			}
		}
	}
	return out
}

// ScaleRows returns diag(mag ⊘ ‖W‖_row)·W: each row of W rescaled to the
// norm mag[i] (DoRA's merged weight, given W′). A zero row stays zero.
func ScaleRows(w lowrank.Matrix[float64], mag []float64) lowrank.Matrix[float64] {
	out := w.Clone()
	n := w.Cols
	for i := 0; i < w.Rows; i++ {
		row := out.Data[i*n : (i+1)*n]
		var ss float64
		for _, v := range row {
			ss += v * v
		}
		norm := math.Sqrt(ss)
		if norm == 0 {
			continue
		}
		f := mag[i] / norm
		for j := range row {
			row[j] *= f
		}
	}
	return out
}
