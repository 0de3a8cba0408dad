package models

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/backend/fastgrad"
)

// Position encodings of the language model (LMConfig.Positions).
const (
	PositionsLearned    = "learned"    // a trained [1, T, d] table, N(0, 0.02²) at init
	PositionsSinusoidal = "sinusoidal" // the fixed sin/cos table of Vaswani et al. (2017)
)

// Layer names of the language model besides its blocks.
const (
	LMEmbed = "tok_embed" // token embedding: one-hot(V) → d
	LMHead  = "lm_head"   // output layer: d → V logits
)

// LMConfig sizes a byte- (or character-) level causal transformer language
// model: a token embedding, Depth pre-LayerNorm blocks of masked
// self-attention and MLP, a final LayerNorm and an output layer over the
// vocabulary.
type LMConfig struct {
	Vocab   int // token ids are in [0, Vocab); 256 for bytes
	Context int // T, the longest input (the positions the model knows)
	Width   int // d
	Depth   int // number of blocks
	Heads   int // attention heads; must divide Width
	MLPDim  int // hidden width of each block's MLP
	// Positions is PositionsLearned (default when empty) or PositionsSinusoidal.
	Positions string
	// LayerNormEpsilon is ε of every LayerNorm (1e-5 if 0).
	LayerNormEpsilon float64
	// DType of variables and activations (Float32 if invalid/zero).
	DType dtypes.DType
}

// DefaultLM is the byte-level model of the quick text experiment: 256 byte
// tokens, context 64, width 64, 2 blocks of 4 heads, MLP 256, learned
// positions (137,280 parameters: 2 blocks of 49,984, embedding 16,448, head
// 16,640, positions 4,096, final norm 128).
func DefaultLM() LMConfig {
	return LMConfig{Vocab: 256, Context: 64, Width: 64, Depth: 2, Heads: 4, MLPDim: 256, Positions: PositionsLearned}
}

// Validate reports the first inconsistency in c.
func (c LMConfig) Validate() error {
	switch {
	case c.Vocab < 2 || c.Context <= 0 || c.Width <= 0 || c.Depth < 0 || c.Heads <= 0 || c.MLPDim <= 0:
		return fmt.Errorf("lm config %+v: sizes must be positive (vocabulary ≥ 2)", c)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("lm config: %d heads do not divide width %d", c.Heads, c.Width)
	case c.Positions != "" && c.Positions != PositionsLearned && c.Positions != PositionsSinusoidal:
		return fmt.Errorf("lm config: positions %q, want %q or %q", c.Positions, PositionsLearned, PositionsSinusoidal)
	case c.Positions == PositionsSinusoidal && c.Width%2 != 0:
		return fmt.Errorf("lm config: sinusoidal positions need an even width, got %d", c.Width)
	case c.DType != dtypes.InvalidDType && c.DType != dtypes.Float32 && c.DType != dtypes.Float64:
		return fmt.Errorf("lm config: dtype %s not supported (want Float32 or Float64)", c.DType)
	}
	return nil
}

func (c LMConfig) dtype() dtypes.DType {
	if c.DType == dtypes.InvalidDType {
		return dtypes.Float32
	}
	return c.DType
}

func (c LMConfig) epsilon() float64 {
	if c.LayerNormEpsilon == 0 {
		return 1e-5
	}
	return c.LayerNormEpsilon
}

func (c LMConfig) positions() string {
	if c.Positions == "" {
		return PositionsLearned
	}
	return c.Positions
}

// LinearLayers lists the model's linear layers in forward order: tok_embed
// (Width×Vocab), blocks.i.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2}, lm_head
// (Vocab×Width).
func (c LMConfig) LinearLayers() []LayerShape {
	layers := []LayerShape{{LMEmbed, c.Width, c.Vocab}}
	for i := range c.Depth {
		p := fmt.Sprintf("blocks.%d.", i)
		layers = append(layers,
			LayerShape{p + "attn.qkv", 3 * c.Width, c.Width},
			LayerShape{p + "attn.proj", c.Width, c.Width},
			LayerShape{p + "mlp.fc1", c.MLPDim, c.Width},
			LayerShape{p + "mlp.fc2", c.Width, c.MLPDim},
		)
	}
	return append(layers, LayerShape{LMHead, c.Vocab, c.Width})
}

// NumParams is the number of values of the model's variables.
func (c LMConfig) NumParams() int {
	n := 0
	for _, l := range c.LinearLayers() {
		n += l.Out*l.In + l.Out // weight and bias
	}
	n += 2 * 2 * c.Width * c.Depth // norm1, norm2 gains and offsets
	n += 2 * c.Width               // final norm
	if c.positions() == PositionsLearned {
		n += c.Context * c.Width
	}
	return n
}

// maskedValue is what the causal mask adds to the scores of future
// positions: finite (no inf − inf), and far below any real score, so
// exp(score + maskedValue − max) is exactly 0 in float32 and float64.
const maskedValue = -1e9

// CausalMask is the [T, T] additive mask of causal attention: 0 where the
// key position j ≤ the query position i, maskedValue where j > i.
func CausalMask(g *Graph, dtype dtypes.DType, t int) *Node {
	mask := make([]float64, t*t)
	for i := range t {
		for j := i + 1; j < t; j++ {
			mask[i*t+j] = maskedValue
		}
	}
	return ConvertDType(Reshape(Const(g, mask), t, t), dtype)
}

// CausalSelfAttention is masked softmax self-attention over the tokens of x
// with heads heads and the layers `<name>.qkv` (d → 3d) and `<name>.proj`
// (d → d): position i attends to positions j ≤ i only,
//
//	[q | k | v] = qkv(x),  A_h = softmax(q_h·k_hᵀ/√(d/heads) + M)·v_h,  y = proj([A_1 … A_heads])
//
// with M the CausalMask. x: [batch, tokens, d] → [batch, tokens, d]; the qkv
// output is split as (3, heads, d/heads), like MultiHeadAttention.
func CausalSelfAttention(ctx *context.Context, run Run, name string, x *Node, heads int) *Node {
	dims := x.Shape().Dimensions
	batch, tokens, d := dims[0], dims[1], dims[2]
	hd := d / heads
	qkv := run.linear(ctx, name+".qkv", x, 3*d)
	qkv = TransposeAllAxes(Reshape(qkv, batch, tokens, 3, heads, hd), 2, 0, 3, 1, 4) // [3, B, H, T, hd]
	parts := fastgrad.SplitAxis(qkv, 0, 3)
	part := func(i int) *Node { return Reshape(parts[i], batch, heads, tokens, hd) }
	q, k, v := part(0), part(1), part(2)
	scores := DotGeneral(q, []int{3}, []int{0, 1}, k, []int{3}, []int{0, 1}) // [B, H, T, T]
	scores = MulScalar(scores, 1/math.Sqrt(float64(hd)))
	scores = Add(scores, ExpandLeftToRank(CausalMask(x.Graph(), x.DType(), tokens), 4))
	att := SoftmaxLastAxis(scores)
	out := DotGeneral(att, []int{3}, []int{0, 1}, v, []int{2}, []int{0, 1}) // [B, H, T, hd]
	out = Reshape(TransposeAllAxes(out, 0, 2, 1, 3), batch, tokens, d)
	return run.linear(ctx, name+".proj", out, d)
}

// SinusoidalPositions is the fixed position table of Vaswani et al.:
// P[p, 2i] = sin(p/10000^(2i/d)), P[p, 2i+1] = cos(p/10000^(2i/d)),
// as a flat row-major [t, d] slice (d even).
func SinusoidalPositions(t, d int) []float64 {
	out := make([]float64, t*d)
	for p := range t {
		for i := 0; i < d; i += 2 {
			angle := float64(p) / math.Pow(10000, float64(i)/float64(d))
			out[p*d+i] = math.Sin(angle)
			out[p*d+i+1] = math.Cos(angle)
		}
	}
	return out
}

// LMFeatures runs the language model's body and returns the final-
// LayerNorm'd hidden states: tokens [B, T] (integer ids in [0, Vocab),
// T ≤ Context) → [B, T, Width]. The output at position t depends on
// tokens[:, 0…t] only.
//
// Layers: tok_embed, a linear layer applied to the one-hot tokens (so
// embedding rows are columns of its Width×Vocab weight, and adapters can
// target it like any linear layer; its bias is a constant offset); the
// variable pos_embed [1, Context, Width] (learned positions); then
// blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2} (pre-LN
// residual blocks with causal attention) and norm.
func LMFeatures(ctx *context.Context, c LMConfig, run Run, tokens *Node) *Node {
	if err := c.Validate(); err != nil {
		panic(err)
	}
	if !tokens.DType().IsInt() || tokens.Rank() != 2 {
		panic(fmt.Sprintf("models: LM tokens must be integer ids [batch, tokens], got %s", tokens.Shape()))
	}
	dtype := c.dtype()
	g := tokens.Graph()
	b, t, d := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1], c.Width
	if t > c.Context {
		panic(fmt.Sprintf("models: LM input of %d tokens is longer than the context (%d)", t, c.Context))
	}
	x := run.linear(ctx, LMEmbed, OneHot(tokens, c.Vocab, dtype), d) // [B, T, d]
	var pos *Node
	if c.positions() == PositionsSinusoidal {
		pos = ConvertDType(Reshape(Const(g, SinusoidalPositions(t, d)), 1, t, d), dtype)
	} else {
		pos = Param(ctx, "pos_embed", dtype, []int{1, c.Context, d}, NormalInit(0.02)).ValueGraph(g)
		if t < c.Context {
			pos = SliceAxis(pos, 1, AxisRange(0, t))
		}
	}
	x = Add(x, BroadcastToDims(pos, b, t, d))
	eps := c.epsilon()
	for i := range c.Depth {
		p := fmt.Sprintf("blocks.%d.", i)
		x = Add(x, CausalSelfAttention(ctx, run, p+"attn", LayerNorm(ctx, p+"norm1", x, eps), c.Heads))
		x = Add(x, MLPBlock(ctx, run, p+"mlp", LayerNorm(ctx, p+"norm2", x, eps), c.MLPDim))
	}
	return LayerNorm(ctx, "norm", x, eps)
}

// LM returns the next-token logits: tokens [B, T] → [B, T, Vocab], where
// logits[:, t, :] scores the token at position t+1 given tokens[:, 0…t].
func LM(ctx *context.Context, c LMConfig, run Run, tokens *Node) *Node {
	return run.linear(ctx, LMHead, LMFeatures(ctx, c, run, tokens), c.Vocab)
}

// TokenCrossEntropy is the mean over every position of
// −log softmax(logits)[target], in nats: logits [B, T, V], targets [B, T]
// (integer ids) → scalar. Divided by ln 2 it is the bits per character of a
// byte-level model.
func TokenCrossEntropy(logits, targets *Node) *Node {
	dims := logits.Shape().Dimensions
	v := dims[len(dims)-1]
	n := logits.Shape().Size() / v
	return SoftmaxCrossEntropy(Reshape(logits, n, v), Reshape(targets, n))
}
