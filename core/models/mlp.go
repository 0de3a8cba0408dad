package models

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"
)

// MLPConfig sizes a multi-layer perceptron with ReLU between layers.
// Sizes = [in, hidden…, classes], e.g. [784, 256, 10].
type MLPConfig struct {
	Sizes []int
	DType dtypes.DType // Float32 if invalid/zero
}

// DefaultMLP is the 784-256-10 MLP.
func DefaultMLP() MLPConfig { return MLPConfig{Sizes: []int{784, 256, 10}} }

// Validate reports the first inconsistency in c.
func (c MLPConfig) Validate() error {
	if len(c.Sizes) < 2 {
		return fmt.Errorf("mlp config: sizes %v: need at least input and output sizes", c.Sizes)
	}
	for _, s := range c.Sizes {
		if s <= 0 {
			return fmt.Errorf("mlp config: sizes %v must be positive", c.Sizes)
		}
	}
	if c.DType != dtypes.InvalidDType && c.DType != dtypes.Float32 && c.DType != dtypes.Float64 {
		return fmt.Errorf("mlp config: dtype %s not supported (want Float32 or Float64)", c.DType)
	}
	return nil
}

// Classes is the number of outputs of the default head.
func (c MLPConfig) Classes() int { return c.Sizes[len(c.Sizes)-1] }

// LinearLayers lists the layers: fc1 … fc(n−1) (hidden) and the head.
func (c MLPConfig) LinearLayers() []LayerShape {
	var layers []LayerShape
	n := len(c.Sizes) - 1
	for i := 0; i < n-1; i++ {
		layers = append(layers, LayerShape{fmt.Sprintf("fc%d", i+1), c.Sizes[i+1], c.Sizes[i]})
	}
	return append(layers, LayerShape{DefaultHead, c.Sizes[n], c.Sizes[n-1]})
}

// MLPFeatures runs the hidden layers: x [B, …] (flattened to [B, in]) → [B, Sizes[n−1]],
// each layer ReLU(fc_i(x)).
func MLPFeatures(ctx *context.Context, c MLPConfig, run Run, x *Node) *Node {
	if err := c.Validate(); err != nil {
		panic(err)
	}
	dtype := c.DType
	if dtype == dtypes.InvalidDType {
		dtype = dtypes.Float32
	}
	if x.DType() != dtype {
		x = ConvertDType(x, dtype)
	}
	x = Reshape(x, x.Shape().Dimensions[0], c.Sizes[0])
	layers := c.LinearLayers()
	for _, l := range layers[:len(layers)-1] {
		x = ReLU(run.linear(ctx, l.Name, x, l.Out))
	}
	return x
}

// MLP returns the logits of the default head: x → [B, Classes].
func MLP(ctx *context.Context, c MLPConfig, run Run, x *Node) *Node {
	return Head(ctx, run, DefaultHead, MLPFeatures(ctx, c, run, x), c.Classes())
}
