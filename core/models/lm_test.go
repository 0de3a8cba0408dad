package models_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/models"
)

// tinyLM is small enough for finite differences in float64.
func tinyLM(positions string) models.LMConfig {
	return models.LMConfig{Vocab: 7, Context: 5, Width: 8, Depth: 2, Heads: 2, MLPDim: 12, Positions: positions, DType: dtypes.Float64}
}

func lmForward(c models.LMConfig) models.Forward {
	return func(ctx *context.Context, run models.Run, x *Node) *Node { return models.LM(ctx, c, run, x) }
}

func randomTokens(rng *rand.Rand, vocab int, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	flat := make([]int32, n)
	for i := range flat {
		flat[i] = int32(rng.IntN(vocab))
	}
	return tensors.FromFlatDataAndDimensions(flat, dims...)
}

func TestLMShapesAndLayerNames(t *testing.T) {
	c := models.DefaultLM()
	rng := rand.New(rand.NewPCG(21, 1))
	r, logits := record(t, lmForward(c), randomTokens(rng, 256, 3, c.Context))
	if !slices.Equal(logits, []int{3, c.Context, 256}) {
		t.Errorf("logits shape %v, want [3 %d 256]", logits, c.Context)
	}
	layers := c.LinearLayers()
	if len(layers) != len(r.names) {
		t.Fatalf("LinearLayers lists %d layers, the model calls %d: %v", len(layers), len(r.names), r.names)
	}
	for i, l := range layers {
		if l.Name != r.names[i] || l.In != r.in[i] || l.Out != r.out[i] {
			t.Errorf("layer %d: listed %s %d×%d, model calls %s with in %d out %d", i, l.Name, l.Out, l.In, r.names[i], r.in[i], r.out[i])
		}
	}
	want := []string{"tok_embed", "blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2",
		"blocks.1.attn.qkv", "blocks.1.attn.proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2", "lm_head"}
	if !slices.Equal(r.names, want) {
		t.Errorf("layer names %v, want %v", r.names, want)
	}
	// Shorter inputs use the first positions.
	_, short := record(t, lmForward(c), randomTokens(rng, 256, 2, 9))
	if !slices.Equal(short, []int{2, 9, 256}) {
		t.Errorf("logits of a 9-token input: shape %v", short)
	}
}

func TestLMParameterCount(t *testing.T) {
	for _, c := range []models.LMConfig{models.DefaultLM(), tinyLM(models.PositionsSinusoidal), tinyLM(models.PositionsLearned)} {
		ctx := context.New()
		x := randomTokens(rand.New(rand.NewPCG(1, 2)), c.Vocab, 1, c.Context)
		if _, err := context.ExecOnce(testBackend, ctx, func(ctx *context.Context, x *Node) *Node { return models.LM(ctx, c, models.Run{}, x) }, x); err != nil {
			t.Fatal(err)
		}
		n := 0
		for v := range ctx.IterVariables() {
			n += v.Shape().Size()
		}
		if n != c.NumParams() {
			t.Errorf("%+v: %d values in variables, NumParams() = %d", c, n, c.NumParams())
		}
	}
}

// lmOutputs runs the LM on tokens and returns the flat logits.
func lmOutputs(t *testing.T, ctx *context.Context, c models.LMConfig, tokens *tensors.Tensor) []float64 {
	t.Helper()
	out, err := context.ExecOnce(testBackend, ctx, func(ctx *context.Context, x *Node) *Node {
		return ConvertDType(models.LM(ctx, c, models.Run{}, x), dtypes.Float64)
	}, tokens)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](out)
}

// TestLMCausal changes the tokens after position p and checks that the
// logits at positions ≤ p are bit-for-bit the same while those after change;
// and that the same prefix alone (a shorter input) gives the same logits.
func TestLMCausal(t *testing.T) {
	for _, positions := range []string{models.PositionsLearned, models.PositionsSinusoidal} {
		for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			t.Run(fmt.Sprint(positions, dtype), func(t *testing.T) {
				c := models.LMConfig{Vocab: 32, Context: 16, Width: 16, Depth: 2, Heads: 4, MLPDim: 32, Positions: positions, DType: dtype}
				rng := rand.New(rand.NewPCG(22, 2))
				ctx := context.New()
				models.SetSeed(ctx, 3)
				const batch = 2
				base := tensors.MustCopyFlatData[int32](randomTokens(rng, c.Vocab, batch, c.Context))
				z0 := lmOutputs(t, ctx, c, tensors.FromFlatDataAndDimensions(base, batch, c.Context))
				for _, p := range []int{0, 5, c.Context - 2} {
					changed := slices.Clone(base)
					for b := range batch {
						for j := p + 1; j < c.Context; j++ {
							changed[b*c.Context+j] = (changed[b*c.Context+j] + 1 + int32(rng.IntN(c.Vocab-1))) % int32(c.Vocab)
						}
					}
					z1 := lmOutputs(t, ctx, c, tensors.FromFlatDataAndDimensions(changed, batch, c.Context))
					for b := range batch {
						for pos := range c.Context {
							row := (b*c.Context + pos) * c.Vocab
							same := slices.Equal(z0[row:row+c.Vocab], z1[row:row+c.Vocab])
							if pos <= p && !same {
								t.Errorf("changing tokens > %d changed the logits at position %d (batch %d)", p, pos, b)
							}
							if pos > p && same {
								t.Errorf("changing tokens > %d left the logits at position %d unchanged (batch %d)", p, pos, b)
							}
						}
					}
					// The prefix alone: same logits up to rounding (other shapes, other summation order).
					prefix := make([]int32, 0, batch*(p+1))
					for b := range batch {
						prefix = append(prefix, base[b*c.Context:b*c.Context+p+1]...)
					}
					zp := lmOutputs(t, ctx, c, tensors.FromFlatDataAndDimensions(prefix, batch, p+1))
					tol := 1e-12
					if dtype == dtypes.Float32 {
						tol = 1e-5
					}
					for b := range batch {
						for pos := 0; pos <= p; pos++ {
							for v := range c.Vocab {
								a, e := zp[(b*(p+1)+pos)*c.Vocab+v], z0[(b*c.Context+pos)*c.Vocab+v]
								if math.Abs(a-e) > tol*math.Max(1, math.Abs(e)) {
									t.Fatalf("prefix of %d tokens: logit (%d, %d, %d) = %g, full input %g", p+1, b, pos, v, a, e)
								}
							}
						}
					}
				}
			})
		}
	}
}

// TestLMGradientsFiniteDifferences checks every variable's gradient of a
// tiny float64 LM's token cross-entropy against central finite differences.
func TestLMGradientsFiniteDifferences(t *testing.T) {
	for _, positions := range []string{models.PositionsLearned, models.PositionsSinusoidal} {
		t.Run(positions, func(t *testing.T) {
			c := tinyLM(positions)
			rng := rand.New(rand.NewPCG(23, 3))
			x := randomTokens(rng, c.Vocab, 3, c.Context)
			y := randomTokens(rng, c.Vocab, 3, c.Context)
			ctx := context.New()
			models.SetSeed(ctx, 12)
			lossFn := func(ctx *context.Context, x, y *Node) *Node {
				return models.TokenCrossEntropy(models.LM(ctx, c, models.Run{}, x), y)
			}
			var gradVars []*context.Variable
			gradExec := context.MustNewExec(testBackend, ctx, func(ctx *context.Context, x, y *Node) []*Node {
				loss := lossFn(ctx, x, y)
				gradVars = gradVars[:0]
				for v := range ctx.IterVariables() {
					if v.Trainable && v.InUseByGraph(x.Graph()) {
						gradVars = append(gradVars, v)
					}
				}
				return append([]*Node{loss}, ctx.BuildTrainableVariablesGradientsGraph(loss)...)
			})
			res, err := gradExec.Exec(x, y)
			if err != nil {
				t.Fatal(err)
			}
			lossExec := context.MustNewExec(testBackend, ctx, lossFn)
			eval := func() float64 {
				out, err := lossExec.Exec1(x, y)
				if err != nil {
					t.Fatal(err)
				}
				return tensors.MustCopyFlatData[float64](out)[0]
			}
			const h = 1e-5
			checked := 0
			names := map[string]bool{}
			for i, v := range gradVars {
				names[v.ScopeAndName()] = true
				grad := tensors.MustCopyFlatData[float64](res[i+1])
				value, _ := v.Value()
				orig := tensors.MustCopyFlatData[float64](value)
				dims := slices.Clone(value.Shape().Dimensions)
				for _, j := range sample(rng, len(orig), 4) {
					set := func(delta float64) {
						p := slices.Clone(orig)
						p[j] += delta
						if err := v.SetValue(tensors.FromFlatDataAndDimensions(p, dims...)); err != nil {
							t.Fatal(err)
						}
					}
					set(h)
					fp := eval()
					set(-h)
					fm := eval()
					set(0)
					fd := (fp - fm) / (2 * h)
					if math.Abs(fd-grad[j]) > 1e-6*math.Max(1, math.Abs(fd)) {
						t.Errorf("%s[%d]: gradient %.9g, finite difference %.9g", v.ScopeAndName(), j, grad[j], fd)
					}
					checked++
				}
			}
			for _, want := range []string{"/tok_embed/weight", "/blocks.1.attn.qkv/weight", "/blocks.0.norm2/bias", "/lm_head/bias"} {
				if !names[want] {
					t.Errorf("no gradient checked for %s", want)
				}
			}
			if _, ok := names["/pos_embed"]; ok != (positions == models.PositionsLearned) {
				t.Errorf("pos_embed trainable = %v with %s positions", ok, positions)
			}
			t.Logf("%d variables, %d elements checked", len(gradVars), checked)
		})
	}
}

func TestLMConfigValidate(t *testing.T) {
	bad := []models.LMConfig{
		{Vocab: 256, Context: 8, Width: 10, Depth: 1, Heads: 4, MLPDim: 8},
		{Vocab: 1, Context: 8, Width: 8, Depth: 1, Heads: 4, MLPDim: 8},
		{Vocab: 256, Context: 8, Width: 8, Depth: 1, Heads: 4, MLPDim: 8, Positions: "rotary"},
		{Vocab: 256, Context: 8, Width: 9, Depth: 1, Heads: 3, MLPDim: 8, Positions: models.PositionsSinusoidal},
		{Vocab: 256, Context: 0, Width: 8, Depth: 1, Heads: 4, MLPDim: 8},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v: Validate() = nil, want an error", c)
		}
	}
	if err := models.DefaultLM().Validate(); err != nil {
		t.Error(err)
	}
}

func TestSinusoidalPositions(t *testing.T) {
	p := models.SinusoidalPositions(3, 4)
	// Position 2, pair i = 2 (frequency 1/10000^(2/4) = 1/100).
	if got, want := p[2*4+2], math.Sin(2.0/100); math.Abs(got-want) > 1e-15 {
		t.Errorf("P[2, 2] = %g, want sin(0.02) = %g", got, want)
	}
	if got := p[0*4+1]; got != 1 {
		t.Errorf("P[0, 1] = %g, want cos(0) = 1", got)
	}
}

func ExampleLMConfig_LinearLayers() {
	c := models.DefaultLM()
	c.Depth = 1
	for _, l := range c.LinearLayers() {
		fmt.Printf("%-18s %3d×%d\n", l.Name, l.Out, l.In)
	}
	fmt.Println("parameters:", models.DefaultLM().NumParams())
	// Output:
	// tok_embed           64×256
	// blocks.0.attn.qkv  192×64
	// blocks.0.attn.proj  64×64
	// blocks.0.mlp.fc1   256×64
	// blocks.0.mlp.fc2    64×256
	// lm_head            256×64
	// parameters: 137280
}
