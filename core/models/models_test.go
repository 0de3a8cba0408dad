package models_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
)

var testBackend = func() backends.Backend {
	b, err := backend.New("go")
	if err != nil {
		panic(err)
	}
	return b
}()

// tinyViT is small enough for finite differences in float64.
func tinyViT() models.ViTConfig {
	return models.ViTConfig{ImageSize: 4, Channels: 2, PatchSize: 2, Width: 8, Depth: 2, Heads: 2, MLPDim: 12, Classes: 3, DType: dtypes.Float64}
}

func randomTensor(rng *rand.Rand, dtype dtypes.DType, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	if dtype == dtypes.Float64 {
		flat := make([]float64, n)
		for i := range flat {
			flat[i] = rng.Float64()*2 - 1
		}
		return tensors.FromFlatDataAndDimensions(flat, dims...)
	}
	flat := make([]float32, n)
	for i := range flat {
		flat[i] = rng.Float32()*2 - 1
	}
	return tensors.FromFlatDataAndDimensions(flat, dims...)
}

func vitForward(c models.ViTConfig) models.Forward {
	return func(ctx *context.Context, run models.Run, x *Node) *Node { return models.ViT(ctx, c, run, x) }
}

func mlpForward(c models.MLPConfig) models.Forward {
	return func(ctx *context.Context, run models.Run, x *Node) *Node { return models.MLP(ctx, c, run, x) }
}

// recorded is what a recording Linear saw: layer names in call order, with
// the input width and output width of each call.
type recorded struct {
	names   []string
	in, out []int
}

// record runs forward once with a Linear that records each call (and then
// applies Dense) and returns the logits' dimensions.
func record(t *testing.T, forward models.Forward, x *tensors.Tensor) (recorded, []int) {
	t.Helper()
	var r recorded
	run := models.Run{Linear: func(ctx *context.Context, name string, x *Node, outDim int) *Node {
		r.names = append(r.names, name)
		r.in = append(r.in, x.Shape().Dimensions[x.Rank()-1])
		r.out = append(r.out, outDim)
		return models.Dense(ctx, name, x, outDim)
	}}
	ctx := context.New()
	out, err := context.ExecOnce(testBackend, ctx, func(ctx *context.Context, x *Node) *Node { return forward(ctx, run, x) }, x)
	if err != nil {
		t.Fatal(err)
	}
	return r, out.Shape().Dimensions
}

func TestViTShapesAndLayerNames(t *testing.T) {
	c := models.DefaultViT()
	rng := rand.New(rand.NewPCG(1, 1))
	r, logits := record(t, vitForward(c), randomTensor(rng, dtypes.Float32, 3, 28, 28, 1))
	if !slices.Equal(logits, []int{3, 10}) {
		t.Errorf("logits shape %v, want [3 10]", logits)
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
	want := []string{"patch_embed.proj", "blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2"}
	if !slices.Equal(r.names[:5], want) || r.names[len(r.names)-1] != "head" || r.names[len(r.names)-2] != "blocks.3.mlp.fc2" {
		t.Errorf("layer names %v", r.names)
	}
}

func TestMLPShapesAndLayerNames(t *testing.T) {
	c := models.MLPConfig{Sizes: []int{20, 16, 12, 5}}
	rng := rand.New(rand.NewPCG(2, 2))
	r, logits := record(t, mlpForward(c), randomTensor(rng, dtypes.Float32, 7, 20))
	if !slices.Equal(logits, []int{7, 5}) {
		t.Errorf("logits shape %v, want [7 5]", logits)
	}
	want := []models.LayerShape{{"fc1", 16, 20}, {"fc2", 12, 16}, {"head", 5, 12}}
	if got := c.LinearLayers(); !slices.Equal(got, want) {
		t.Errorf("LinearLayers() = %v, want %v", got, want)
	}
	for i, l := range want {
		if r.names[i] != l.Name || r.in[i] != l.In || r.out[i] != l.Out {
			t.Errorf("call %d: %s in %d out %d, want %v", i, r.names[i], r.in[i], r.out[i], l)
		}
	}
}

// variables returns the flat float64 values of ctx's variables by scope/name.
func variables(t *testing.T, ctx *context.Context) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for v := range ctx.IterVariables() {
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		switch value.DType() {
		case dtypes.Float32:
			for _, x := range tensors.MustCopyFlatData[float32](value) {
				out[v.ScopeAndName()] = append(out[v.ScopeAndName()], float64(x))
			}
		case dtypes.Float64:
			out[v.ScopeAndName()] = tensors.MustCopyFlatData[float64](value)
		}
	}
	return out
}

func TestVariablesLayoutAndSeed(t *testing.T) {
	c := models.DefaultViT()
	x := randomTensor(rand.New(rand.NewPCG(3, 3)), dtypes.Float32, 2, 28, 28, 1)
	build := func(seed int64) (map[string][]float64, *context.Context) {
		ctx := context.New()
		models.SetSeed(ctx, seed)
		if _, err := context.ExecOnce(testBackend, ctx, func(ctx *context.Context, x *Node) *Node { return models.ViT(ctx, c, models.Run{}, x) }, x); err != nil {
			t.Fatal(err)
		}
		return variables(t, ctx), ctx
	}
	a, ctx := build(7)
	b, _ := build(7)
	other, _ := build(8)
	for _, l := range c.LinearLayers() {
		w, bias := "/"+l.Name+"/weight", "/"+l.Name+"/bias"
		if len(a[w]) != l.Out*l.In || len(a[bias]) != l.Out {
			t.Errorf("%s: weight has %d values, bias %d; want %d×%d and %d", l.Name, len(a[w]), len(a[bias]), l.Out, l.In, l.Out)
		}
		bound := 1 / math.Sqrt(float64(l.In))
		for _, v := range a[w] {
			if math.Abs(v) > bound {
				t.Fatalf("%s: weight %g outside ±1/√in = %g", l.Name, v, bound)
			}
		}
	}
	for _, name := range []string{"/cls_token", "/pos_embed", "/blocks.0.norm1/weight", "/norm/bias"} {
		if _, ok := a[name]; !ok {
			t.Errorf("variable %s missing", name)
		}
	}
	if len(a) != len(b) {
		t.Fatalf("same seed, different variable sets: %d vs %d", len(a), len(b))
	}
	for name, va := range a {
		if !slices.Equal(va, b[name]) {
			t.Errorf("seed 7 twice: %s differs", name)
		}
		if strings.HasSuffix(name, "/weight") && !strings.Contains(name, "norm") && slices.Equal(va, other[name]) {
			t.Errorf("seeds 7 and 8 give the same %s", name)
		}
	}
	// Weight of one layer must not depend on which other layers exist:
	// a 1-block ViT with the same seed starts blocks.0 identically.
	c1 := c
	c1.Depth = 1
	ctx1 := context.New()
	models.SetSeed(ctx1, 7)
	if _, err := context.ExecOnce(testBackend, ctx1, func(ctx *context.Context, x *Node) *Node { return models.ViT(ctx, c1, models.Run{}, x) }, x); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(variables(t, ctx1)["/blocks.0.mlp.fc1/weight"], a["/blocks.0.mlp.fc1/weight"]) {
		t.Error("blocks.0.mlp.fc1 weight depends on the model depth")
	}
	_ = ctx
}

// TestSecondHeadKeepsFirst checks that a task-B head is a separate layer and
// that building it leaves the task-A head's outputs unchanged.
func TestSecondHeadKeepsFirst(t *testing.T) {
	c := models.DefaultViT()
	x := randomTensor(rand.New(rand.NewPCG(4, 4)), dtypes.Float32, 2, 28, 28, 1)
	ctx := context.New()
	taskA := func() []float32 {
		out, err := context.ExecOnce(testBackend, ctx, func(ctx *context.Context, x *Node) *Node { return models.ViT(ctx, c, models.Run{}, x) }, x)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	before := taskA()
	out, err := context.ExecOnce(testBackend, ctx, func(ctx *context.Context, x *Node) *Node {
		return models.Head(ctx, models.Run{}, "head_taskB", models.ViTFeatures(ctx, c, models.Run{}, x), 5)
	}, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := out.Shape().Dimensions; !slices.Equal(d, []int{2, 5}) {
		t.Errorf("task-B logits %v, want [2 5]", d)
	}
	vars := variables(t, ctx)
	if len(vars["/head_taskB/weight"]) != 5*64 || len(vars["/head/weight"]) != 10*64 {
		t.Errorf("heads: taskB weight %d values, head weight %d", len(vars["/head_taskB/weight"]), len(vars["/head/weight"]))
	}
	if after := taskA(); !slices.Equal(before, after) {
		t.Error("task-A logits changed after adding the task-B head")
	}
}

func TestLayerInputs(t *testing.T) {
	c := models.DefaultViT()
	x := randomTensor(rand.New(rand.NewPCG(5, 5)), dtypes.Float32, 3, 28, 28, 1)
	ctx := context.New()
	got, err := models.LayerInputs(testBackend, ctx, models.Run{}, vitForward(c), x, "patch_embed.proj", "blocks.2.mlp.fc2", "head")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{{3 * 16, 49}, {3 * 17, 128}, {3, 64}}
	for i, g := range got {
		if !slices.Equal(g.Shape().Dimensions, want[i]) {
			t.Errorf("input %d: shape %v, want %v", i, g.Shape().Dimensions, want[i])
		}
	}
	// The patch-embedding input is the patchified image: check one patch.
	patches := tensors.MustCopyFlatData[float32](got[0])
	img := tensors.MustCopyFlatData[float32](x)
	// Image 1, patch (row 2, col 3) = token 2·4+3, pixel (py=5, px=6) of the patch.
	tok, py, px := 2*4+3, 5, 6
	if a, b := patches[(16+tok)*49+py*7+px], img[784+(2*7+py)*28+3*7+px]; a != b {
		t.Errorf("patch pixel = %g, image pixel = %g", a, b)
	}
	if _, err := models.LayerInputs(testBackend, ctx, models.Run{}, vitForward(c), x, "blocks.9.attn.qkv"); err == nil || !strings.Contains(err.Error(), "blocks.9.attn.qkv") {
		t.Errorf("unknown layer: err = %v", err)
	}
}

// TestGradientsFiniteDifferences checks every variable's gradient of a tiny
// float64 ViT (and MLP) against central finite differences of the loss.
func TestGradientsFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	vit := tinyViT()
	mlp := models.MLPConfig{Sizes: []int{6, 5, 4}, DType: dtypes.Float64}
	for _, tc := range []struct {
		name    string
		forward models.Forward
		x       *tensors.Tensor
		classes int
	}{
		{"vit", vitForward(vit), randomTensor(rng, dtypes.Float64, 3, 4, 4, 2), vit.Classes},
		{"mlp", mlpForward(mlp), randomTensor(rng, dtypes.Float64, 3, 6), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels := tensors.FromFlatDataAndDimensions([]int32{0, 2, 1}, 3)
			ctx := context.New()
			models.SetSeed(ctx, 11)
			lossFn := func(ctx *context.Context, x, y *Node) *Node {
				return models.SoftmaxCrossEntropy(tc.forward(ctx, models.Run{}, x), y)
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
			res, err := gradExec.Exec(tc.x, labels)
			if err != nil {
				t.Fatal(err)
			}
			lossExec := context.MustNewExec(testBackend, ctx, lossFn)
			eval := func() float64 {
				out, err := lossExec.Exec1(tc.x, labels)
				if err != nil {
					t.Fatal(err)
				}
				return tensors.MustCopyFlatData[float64](out)[0]
			}
			const h = 1e-5
			checked := 0
			for i, v := range gradVars {
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
			if checked < 3*len(gradVars) {
				t.Errorf("only %d elements checked for %d variables", checked, len(gradVars))
			}
			t.Logf("%d variables, %d elements checked", len(gradVars), checked)
		})
	}
}

// sample returns up to k distinct indices of [0, n).
func sample(rng *rand.Rand, n, k int) []int {
	p := rng.Perm(n)
	return p[:min(k, n)]
}

func TestConfigValidate(t *testing.T) {
	bad := []models.ViTConfig{
		{ImageSize: 28, Channels: 1, PatchSize: 5, Width: 64, Depth: 1, Heads: 4, MLPDim: 8, Classes: 10},
		{ImageSize: 28, Channels: 1, PatchSize: 7, Width: 64, Depth: 1, Heads: 3, MLPDim: 8, Classes: 10},
		{ImageSize: 28, Channels: 1, PatchSize: 7, Width: 64, Depth: 1, Heads: 4, MLPDim: 8, Classes: 0},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v: Validate() = nil, want an error", c)
		}
	}
	if err := models.DefaultViT().Validate(); err != nil {
		t.Error(err)
	}
	if err := (models.MLPConfig{Sizes: []int{5}}).Validate(); err == nil {
		t.Error("MLP with one size validated")
	}
}

func ExampleViTConfig_LinearLayers() {
	c := models.DefaultViT()
	c.Depth = 1
	for _, l := range c.LinearLayers() {
		fmt.Printf("%-17s %3d×%d\n", l.Name, l.Out, l.In)
	}
	// Output:
	// patch_embed.proj   64×49
	// blocks.0.attn.qkv 192×64
	// blocks.0.attn.proj  64×64
	// blocks.0.mlp.fc1  128×64
	// blocks.0.mlp.fc2   64×128
	// head               10×64
}

// TestViTConfigJSONUnchanged: the optional fields (non-square sizes, the
// activation) are omitted when unset, so configurations hashed into cache
// keys before they existed keep their keys.
func TestViTConfigJSONUnchanged(t *testing.T) {
	b, err := json.Marshal(models.DefaultViT())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ImageSize":28,"Channels":1,"PatchSize":7,"Width":64,"Depth":4,"Heads":4,"MLPDim":128,"Classes":10,"LayerNormEpsilon":0,"DType":"InvalidDType"}`
	if string(b) != want {
		t.Errorf("DefaultViT JSON\n%s\nwant\n%s", b, want)
	}
	c := models.DefaultViT()
	c.ImageWidth, c.PatchWidth, c.Activation = 14, 2, "gelu_new"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ImageShape(), []int{28, 14, 1}) || c.PatchGrid() != [2]int{4, 7} || c.NumPatches() != 28 || c.PatchDim() != 14 {
		t.Errorf("28×14 images, 7×2 patches: shape %v grid %v, %d patches of %d values", c.ImageShape(), c.PatchGrid(), c.NumPatches(), c.PatchDim())
	}
	for _, bad := range []models.ViTConfig{{ImageWidth: 14, PatchWidth: 3}, {Activation: "gelu_10"}} {
		b := models.DefaultViT()
		b.ImageWidth, b.PatchWidth, b.Activation = bad.ImageWidth, bad.PatchWidth, bad.Activation
		if b.Validate() == nil {
			t.Errorf("%+v validated", b)
		}
	}
}
