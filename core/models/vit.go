package models

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"
)

// ViTConfig sizes a Vision Transformer.
type ViTConfig struct {
	ImageSize int // image height (and width, unless ImageWidth is set)
	Channels  int
	PatchSize int // patch height (and width, unless PatchWidth is set); must divide ImageSize
	Width     int // token width d
	Depth     int // number of blocks
	Heads     int // attention heads; must divide Width
	MLPDim    int // hidden width of each block's MLP
	Classes   int // outputs of the default head
	// LayerNormEpsilon is ε of every LayerNorm (PyTorch's default 1e-5 if 0).
	LayerNormEpsilon float64
	// ImageWidth, when set, is the image width of non-square images
	// (0 means ImageSize); PatchWidth likewise the patch width (0 means
	// PatchSize), which must divide it.
	ImageWidth int `json:",omitempty"`
	PatchWidth int `json:",omitempty"`
	// Activation of the MLP blocks (see Activation): "" or "gelu" is the
	// exact GELU.
	Activation string `json:",omitempty"`
	// DType of variables and activations (Float32 if invalid/zero).
	DType dtypes.DType
}

// DefaultViT is the small ViT of the quick experiments: 28×28×1 images,
// 7×7 patches (16 tokens + class token), width 64, 4 blocks of 4 heads, MLP 128.
func DefaultViT() ViTConfig {
	return ViTConfig{ImageSize: 28, Channels: 1, PatchSize: 7, Width: 64, Depth: 4, Heads: 4, MLPDim: 128, Classes: 10}
}

// Validate reports the first inconsistency in c.
func (c ViTConfig) Validate() error {
	switch {
	case c.ImageSize <= 0 || c.Channels <= 0 || c.PatchSize <= 0 || c.Width <= 0 || c.Depth < 0 || c.Heads <= 0 || c.MLPDim <= 0 || c.Classes <= 0:
		return fmt.Errorf("vit config %+v: sizes must be positive", c)
	case c.ImageWidth < 0 || c.PatchWidth < 0:
		return fmt.Errorf("vit config %+v: sizes must be positive", c)
	case c.ImageSize%c.PatchSize != 0:
		return fmt.Errorf("vit config: patch size %d does not divide image size %d", c.PatchSize, c.ImageSize)
	case c.imageWidth()%c.patchWidth() != 0:
		return fmt.Errorf("vit config: patch width %d does not divide image width %d", c.patchWidth(), c.imageWidth())
	case c.Width%c.Heads != 0:
		return fmt.Errorf("vit config: %d heads do not divide width %d", c.Heads, c.Width)
	case c.DType != dtypes.InvalidDType && c.DType != dtypes.Float32 && c.DType != dtypes.Float64:
		return fmt.Errorf("vit config: dtype %s not supported (want Float32 or Float64)", c.DType)
	}
	if _, err := Activation(c.Activation); err != nil {
		return fmt.Errorf("vit config: %w", err)
	}
	return nil
}

// imageWidth and patchWidth resolve the optional non-square sizes.
func (c ViTConfig) imageWidth() int {
	if c.ImageWidth > 0 {
		return c.ImageWidth
	}
	return c.ImageSize
}

func (c ViTConfig) patchWidth() int {
	if c.PatchWidth > 0 {
		return c.PatchWidth
	}
	return c.PatchSize
}

// ImageShape is one image's shape [height, width, channels].
func (c ViTConfig) ImageShape() []int { return []int{c.ImageSize, c.imageWidth(), c.Channels} }

// PatchShape is one patch's [height, width].
func (c ViTConfig) PatchShape() [2]int { return [2]int{c.PatchSize, c.patchWidth()} }

// PatchGrid is the number of patches along the height and the width.
func (c ViTConfig) PatchGrid() [2]int {
	return [2]int{c.ImageSize / c.PatchSize, c.imageWidth() / c.patchWidth()}
}

// NumPatches is the number of patch tokens (without the class token).
func (c ViTConfig) NumPatches() int { g := c.PatchGrid(); return g[0] * g[1] }

// PatchDim is the length of a flattened patch, patch height·width·Channels.
func (c ViTConfig) PatchDim() int { return c.PatchSize * c.patchWidth() * c.Channels }

func (c ViTConfig) dtype() dtypes.DType {
	if c.DType == dtypes.InvalidDType {
		return dtypes.Float32
	}
	return c.DType
}

func (c ViTConfig) epsilon() float64 {
	if c.LayerNormEpsilon == 0 {
		return 1e-5
	}
	return c.LayerNormEpsilon
}

// DefaultHead is the name of the classification head of the first task.
const DefaultHead = "head"

// LinearLayers lists the backbone's linear layers in forward order, with the
// default head last.
func (c ViTConfig) LinearLayers() []LayerShape {
	layers := []LayerShape{{"patch_embed.proj", c.Width, c.PatchDim()}}
	for i := range c.Depth {
		p := fmt.Sprintf("blocks.%d.", i)
		layers = append(layers,
			LayerShape{p + "attn.qkv", 3 * c.Width, c.Width},
			LayerShape{p + "attn.proj", c.Width, c.Width},
			LayerShape{p + "mlp.fc1", c.MLPDim, c.Width},
			LayerShape{p + "mlp.fc2", c.Width, c.MLPDim},
		)
	}
	return append(layers, LayerShape{DefaultHead, c.Classes, c.Width})
}

// Patchify cuts images into flattened non-overlapping patches, row-major over
// the patch grid, each patch flattened as (row, column, channel):
// images [B, H, W, C] (or [B, H, W] when C = 1) → [B, (H/ph)·(W/pw), ph·pw·C].
// A reshape and one transpose; no convolution or slicing. (A convolution
// kernel K [d, C, ph, pw], as PyTorch stores it, is the patch embedding's
// weight [d, ph·pw·C] after permuting its axes to [d, ph, pw, C].)
func (c ViTConfig) Patchify(images *Node) *Node {
	b := images.Shape().Dimensions[0]
	p, g := c.PatchShape(), c.PatchGrid()
	x := Reshape(images, b, g[0], p[0], g[1], p[1], c.Channels)
	x = TransposeAllAxes(x, 0, 1, 3, 2, 4, 5) // [B, gy, gx, py, px, C]
	return Reshape(x, b, g[0]*g[1], c.PatchDim())
}

// ViTFeatures runs the ViT backbone and returns the final-LayerNorm'd class
// token: images [B, H, W, C] (or [B, H, W]) → [B, Width].
//
// Layers: patch_embed.proj; variables cls_token [1, 1, d] and pos_embed
// [1, 1+N, d]; blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}
// (pre-LayerNorm residual blocks); norm.
func ViTFeatures(ctx *context.Context, c ViTConfig, run Run, images *Node) *Node {
	if err := c.Validate(); err != nil {
		panic(err)
	}
	dtype := c.dtype()
	if images.DType() != dtype {
		images = ConvertDType(images, dtype)
	}
	b, d, n := images.Shape().Dimensions[0], c.Width, c.NumPatches()
	x := run.linear(ctx, "patch_embed.proj", c.Patchify(images), d) // [B, N, d]
	cls := Param(ctx, "cls_token", dtype, []int{1, 1, d}, NormalInit(0.02)).ValueGraph(images.Graph())
	pos := Param(ctx, "pos_embed", dtype, []int{1, 1 + n, d}, NormalInit(0.02)).ValueGraph(images.Graph())
	x = Concatenate([]*Node{BroadcastToDims(cls, b, 1, d), x}, 1)
	x = Add(x, pos)
	eps := c.epsilon()
	act, _ := Activation(c.Activation) // checked by Validate
	for i := range c.Depth {
		p := fmt.Sprintf("blocks.%d.", i)
		x = Add(x, MultiHeadAttention(ctx, run, p+"attn", LayerNorm(ctx, p+"norm1", x, eps), c.Heads))
		x = Add(x, MLPBlockWith(ctx, run, p+"mlp", LayerNorm(ctx, p+"norm2", x, eps), c.MLPDim, act))
	}
	x = LayerNorm(ctx, "norm", x, eps)
	return Reshape(SliceAxis(x, 1, AxisRange(0, 1)), b, d)
}

// Head is a classification head: the linear layer name, features [B, d] → logits [B, classes].
// Tasks keep separate heads (e.g. "head" for task A, "head_taskB" for task B).
func Head(ctx *context.Context, run Run, name string, features *Node, classes int) *Node {
	return run.linear(ctx, name, features, classes)
}

// ViT returns the logits of the default head: images → [B, Classes].
func ViT(ctx *context.Context, c ViTConfig, run Run, images *Node) *Node {
	return Head(ctx, run, DefaultHead, ViTFeatures(ctx, c, run, images), c.Classes)
}
