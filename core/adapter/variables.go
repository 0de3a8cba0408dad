package adapter

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/lowrank"
)

// Variable names inside a layer's scope. "weight" and "bias" are those of
// prism's models (and PyTorch's nn.Linear); the adapter names follow PEFT
// (lora_A.weight, lora_B.weight, lora_magnitude_vector).
const (
	WeightName    = "weight"         // m×n: W, or Wres once an adapter is attached
	BiasName      = "bias"           // m
	LoRAAName     = "lora_A"         // r×n
	LoRABName     = "lora_B"         // m×r
	MagnitudeName = "lora_magnitude" // m (DoRA)
)

// variable returns the variable name of the layer's scope, or nil.
func variable(ctx *context.Context, layer, name string) *context.Variable {
	scope := ctx.In(layer)
	return scope.GetVariableByScopeAndName(scope.Scope(), name)
}

// readValues copies a float32 or float64 variable into float64 values.
func readValues(v *context.Variable) ([]float64, error) {
	t, err := v.Value()
	if err != nil {
		return nil, err
	}
	switch t.DType() {
	case dtypes.Float32:
		flat := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(flat))
		for i, x := range flat {
			out[i] = float64(x)
		}
		return out, nil
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](t), nil
	}
	return nil, fmt.Errorf("variable %s has dtype %s, want Float32 or Float64", v.ScopeAndName(), t.DType())
}

// readMatrix reads a rank-2 variable as a float64 matrix.
func readMatrix(v *context.Variable) (lowrank.Matrix[float64], error) {
	dims := v.Shape().Dimensions
	if len(dims) != 2 {
		return lowrank.Matrix[float64]{}, fmt.Errorf("variable %s has shape %s, want a matrix", v.ScopeAndName(), v.Shape())
	}
	data, err := readValues(v)
	if err != nil {
		return lowrank.Matrix[float64]{}, err
	}
	return lowrank.MatrixFrom(dims[0], dims[1], data)
}

// newTensor makes a tensor of the given dtype (Float32 or Float64) from
// float64 values.
func newTensor(dtype dtypes.DType, data []float64, dims ...int) *tensors.Tensor {
	if dtype == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(append([]float64(nil), data...), dims...)
	}
	flat := make([]float32, len(data))
	for i, x := range data {
		flat[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(flat, dims...)
}

// setVariable creates the variable name in the layer's scope with the given
// value, or replaces the value of an existing one of the same shape.
func setVariable(ctx *context.Context, layer, name string, value *tensors.Tensor, trainable bool) (*context.Variable, error) {
	scope := ctx.In(layer).Checked(false)
	if v := scope.GetVariableByScopeAndName(scope.Scope(), name); v != nil {
		if !v.Shape().Equal(value.Shape()) {
			return nil, fmt.Errorf("adapter: layer %q: variable %s has shape %s, the adapter needs %s", layer, name, v.Shape(), value.Shape())
		}
		if err := v.SetValue(value); err != nil {
			return nil, fmt.Errorf("adapter: layer %q: setting %s: %w", layer, name, err)
		}
		v.SetTrainable(trainable)
		return v, nil
	}
	return scope.VariableWithValue(name, value).SetTrainable(trainable), nil
}
