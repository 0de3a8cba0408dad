package train

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/models"
)

// backboneLayers converts core/models' layer list, dropping the default head.
func backboneLayers(layers []models.LayerShape) []adapter.Layer {
	var out []adapter.Layer
	for _, l := range layers {
		if l.Name == models.DefaultHead {
			continue
		}
		out = append(out, adapter.Layer{Name: l.Name, Out: l.Out, In: l.In})
	}
	return out
}

// ViTNetwork is core/models' Vision Transformer as a Network: inputs
// [ImageSize, ImageSize, Channels], features the final-LayerNorm'd class
// token (Width), layers patch_embed.proj and blocks.i.{attn.qkv, attn.proj,
// mlp.fc1, mlp.fc2}. c.Classes is ignored (each task's head has its own).
func ViTNetwork(c models.ViTConfig) (Network, error) {
	if err := c.Validate(); err != nil {
		return Network{}, err
	}
	c.Classes = 1 // not part of the backbone
	return Network{
		Kind:       "vit",
		Config:     c,
		InputShape: []int{c.ImageSize, c.ImageSize, c.Channels},
		Layers:     backboneLayers(c.LinearLayers()),
		FeatureDim: c.Width,
		Features: func(ctx *mlctx.Context, linear adapter.LinearFunc, x *Node) *Node {
			return models.ViTFeatures(ctx, c, models.Run{Linear: linear}, x)
		},
		Dense: models.Dense,
		Seed:  models.SetSeed,
	}, nil
}

// MLPNetwork is core/models' MLP as a Network on inputs of inputShape
// (flattened to c.Sizes[0] values): features are the last hidden layer
// (ReLU), layers fc1 … fc(n−1). c.Sizes' last entry (the classes) is
// ignored.
func MLPNetwork(c models.MLPConfig, inputShape []int) (Network, error) {
	if err := c.Validate(); err != nil {
		return Network{}, err
	}
	if len(c.Sizes) < 3 {
		return Network{}, fmt.Errorf("mlp config: sizes %v: need a hidden layer (input, hidden…, classes)", c.Sizes)
	}
	size := 1
	for _, d := range inputShape {
		size *= d
	}
	if size != c.Sizes[0] {
		return Network{}, fmt.Errorf("mlp config: input size %d, examples of shape %v have %d values", c.Sizes[0], inputShape, size)
	}
	c.Sizes = append([]int(nil), c.Sizes...)
	c.Sizes[len(c.Sizes)-1] = 1 // not part of the backbone
	return Network{
		Kind:       "mlp",
		Config:     c,
		InputShape: inputShape,
		Layers:     backboneLayers(c.LinearLayers()),
		FeatureDim: c.Sizes[len(c.Sizes)-2],
		Features: func(ctx *mlctx.Context, linear adapter.LinearFunc, x *Node) *Node {
			return models.MLPFeatures(ctx, c, models.Run{Linear: linear}, x)
		},
		Dense: models.Dense,
		Seed:  models.SetSeed,
	}, nil
}
