package hfvit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/models"
)

// variableOf splits a tensor name into the layer scope and variable name:
// "blocks.0.attn.qkv.weight" → ("blocks.0.attn.qkv", "weight"),
// "cls_token" → ("", "cls_token").
func variableOf(name string) (scope, variable string) {
	i := strings.LastIndex(name, ".")
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

// SetVariables stores params as the variables models.ViT reads in ctx (the
// model's root scope): tensor "blocks.0.attn.qkv.weight" becomes variable
// "weight" of ctx.In("blocks.0.attn.qkv"). Existing variables must have the
// same shape and get the new values; missing ones are created.
func SetVariables[T Float](ctx *context.Context, params []Tensor[T]) error {
	for _, p := range params {
		scope, name := variableOf(p.Name)
		c := ctx
		if scope != "" {
			c = ctx.In(scope)
		}
		value := tensors.FromFlatDataAndDimensions(slices.Clone(p.Data), p.Shape...)
		if v := c.GetVariableByScopeAndName(c.Scope(), name); v != nil {
			if !v.Shape().Equal(value.Shape()) {
				return fmt.Errorf("hfvit: variable %s has shape %s, tensor %q has %s", v.ScopeAndName(), v.Shape(), p.Name, value.Shape())
			}
			if err := v.SetValue(value); err != nil {
				return err
			}
			continue
		}
		c.Checked(false).VariableWithValue(name, value)
	}
	return nil
}

// Variables reads the ViT v's tensors (PrismSpecs(v), in that order) from
// the variables of ctx, the model's root scope. Missing variables and wrong
// shapes or dtypes are errors.
func Variables[T Float](ctx *context.Context, v models.ViTConfig) ([]Tensor[T], error) {
	var out []Tensor[T]
	for _, s := range PrismSpecs(v) {
		scope, name := variableOf(s.Name)
		c := ctx
		if scope != "" {
			c = ctx.In(scope)
		}
		vr := c.GetVariableByScopeAndName(c.Scope(), name)
		if vr == nil {
			return nil, fmt.Errorf("hfvit: no variable %s/%s for tensor %q (expected shape %v)", c.Scope(), name, s.Name, s.Shape)
		}
		value, err := vr.Value()
		if err != nil {
			return nil, err
		}
		if !slices.Equal(value.Shape().Dimensions, s.Shape) {
			return nil, fmt.Errorf("hfvit: variable %s has shape %s, expected %v", vr.ScopeAndName(), value.Shape(), s.Shape)
		}
		data := make([]T, value.Shape().Size())
		switch value.DType() {
		case dtypes.Float32:
			for i, x := range tensors.MustCopyFlatData[float32](value) {
				data[i] = T(x)
			}
		case dtypes.Float64:
			for i, x := range tensors.MustCopyFlatData[float64](value) {
				data[i] = T(x)
			}
		default:
			return nil, fmt.Errorf("hfvit: variable %s has dtype %s, want Float32 or Float64", vr.ScopeAndName(), value.DType())
		}
		out = append(out, Tensor[T]{s.Name, s.Shape, data})
	}
	return out, nil
}
