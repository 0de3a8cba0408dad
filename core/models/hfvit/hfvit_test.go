package hfvit_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/safetensors"
)

var testBackend = func() backends.Backend {
	b, err := backend.New("go")
	if err != nil {
		panic(err)
	}
	return b
}()

// prismForward runs prism's ViT with params on images [B, H, W, C] and
// returns the features [B·d] and (with a head) the logits [B·classes], as
// float64.
func prismForward[T hfvit.Float](t *testing.T, v models.ViTConfig, params []hfvit.Tensor[T], images []float64, batch int) (features, logits []float64) {
	t.Helper()
	ctx := context.New()
	if err := hfvit.SetVariables(ctx, params); err != nil {
		t.Fatal(err)
	}
	shape := append([]int{batch}, v.ImageShape()...)
	var x *tensors.Tensor
	if v.DType == dtypes.Float64 {
		x = tensors.FromFlatDataAndDimensions(slices.Clone(images), shape...)
	} else {
		f := make([]float32, len(images))
		for i, p := range images {
			f[i] = float32(p)
		}
		x = tensors.FromFlatDataAndDimensions(f, shape...)
	}
	outs, err := context.ExecOnceN(testBackend, ctx, func(ctx *context.Context, x *Node) []*Node {
		backbone := v
		backbone.Classes = max(1, v.Classes) // the backbone does not use it
		f := models.ViTFeatures(ctx, backbone, models.Run{}, x)
		if v.Classes == 0 {
			return []*Node{f}
		}
		return []*Node{f, models.Head(ctx, models.Run{}, models.DefaultHead, f, v.Classes)}
	}, x)
	if err != nil {
		t.Fatal(err)
	}
	flat := func(t *tensors.Tensor) []float64 {
		if t.DType() == dtypes.Float64 {
			return tensors.MustCopyFlatData[float64](t)
		}
		var out []float64
		for _, x := range tensors.MustCopyFlatData[float32](t) {
			out = append(out, float64(x))
		}
		return out
	}
	features = flat(outs[0])
	if len(outs) > 1 {
		logits = flat(outs[1])
	}
	return features, logits
}

// maxRelDiff is max |a − b| / max(1, max |b|).
func maxRelDiff(a []float64, b [][]float64) float64 {
	var flat []float64
	for _, row := range b {
		flat = append(flat, row...)
	}
	if len(a) != len(flat) {
		return math.Inf(1)
	}
	scale, worst := 1.0, 0.0
	for _, x := range flat {
		scale = math.Max(scale, math.Abs(x))
	}
	for i := range a {
		worst = math.Max(worst, math.Abs(a[i]-flat[i]))
	}
	return worst / scale
}

// importCases are hand-built checkpoints: a square ViTForImageClassification
// with qkv biases; a non-square image with non-square patches, several
// heads, no qkv biases and the tanh GELU; a bare ViTModel (no prefix, a
// pooler, no classifier); a small-ε ReLU/SiLU variety.
var importCases = []struct {
	name string
	spec hfSpec
}{
	{"square", hfSpec{hidden: 12, layers: 2, heads: 3, inter: 20, act: "gelu", eps: 1e-12, imgH: 8, imgW: 8, patchH: 4, patchW: 4,
		channels: 3, labels: 5, qkvBias: true, prefix: "vit."}},
	{"nonsquare", hfSpec{hidden: 8, layers: 2, heads: 4, inter: 16, act: "gelu_new", eps: 1e-6, imgH: 6, imgW: 10, patchH: 3, patchW: 2,
		channels: 2, labels: 3, qkvBias: false, prefix: "vit."}},
	{"vitmodel", hfSpec{hidden: 8, layers: 1, heads: 2, inter: 12, act: "quick_gelu", eps: 1e-12, imgH: 4, imgW: 6, patchH: 2, patchW: 3,
		channels: 1, qkvBias: true, pooler: true}},
	{"silu", hfSpec{hidden: 6, layers: 1, heads: 2, inter: 10, act: "silu", eps: 1e-5, imgH: 4, imgW: 4, patchH: 2, patchW: 2,
		channels: 1, labels: 2, qkvBias: true, prefix: "vit."}},
	{"relu", hfSpec{hidden: 6, layers: 1, heads: 1, inter: 10, act: "relu", eps: 1e-12, imgH: 2, imgW: 4, patchH: 2, patchW: 2,
		channels: 3, labels: 4, qkvBias: true, prefix: "vit."}},
}

// TestImportMatchesReference imports each hand-built checkpoint in float64
// (stored F64) and float32 (stored F32) and compares prism's outputs with
// the independent reference forward of transformers' model.
func TestImportMatchesReference(t *testing.T) {
	for i, tc := range importCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i+1), 7))
			s := tc.spec
			ck := randomCheckpoint(s, rng)
			const batch = 3
			pixels := randomPixels(s, batch, rng)
			images := nhwc(pixels)

			dir64 := t.TempDir()
			writeCheckpoint(t, dir64, s, ck, safetensors.F64)
			c64, err := hfvit.Import[float64](dir64)
			if err != nil {
				t.Fatal(err)
			}
			refFeatures, refLogits := referenceForward(s, ck, pixels)
			features, logits := prismForward(t, c64.ViT, c64.Params, images, batch)
			if d := maxRelDiff(features, refFeatures); d > 1e-12 {
				t.Errorf("float64 features differ from the reference by %.3g", d)
			} else {
				t.Logf("float64: features within %.2g of the reference", d)
			}
			if s.labels > 0 {
				if d := maxRelDiff(logits, refLogits); d > 1e-12 {
					t.Errorf("float64 logits differ from the reference by %.3g", d)
				}
			}

			dir32 := t.TempDir()
			writeCheckpoint(t, dir32, s, ck, safetensors.F32)
			c32, err := hfvit.Import[float32](dir32)
			if err != nil {
				t.Fatal(err)
			}
			ref32Features, ref32Logits := referenceForward(s, roundF32(ck), pixels)
			features, logits = prismForward(t, c32.ViT, c32.Params, images, batch)
			if d := maxRelDiff(features, ref32Features); d > 2e-5 {
				t.Errorf("float32 features differ from the reference by %.3g", d)
			} else {
				t.Logf("float32: features within %.2g of the reference", d)
			}
			if s.labels > 0 {
				if d := maxRelDiff(logits, ref32Logits); d > 2e-5 {
					t.Errorf("float32 logits differ from the reference by %.3g", d)
				}
			}

			// What the import says about the checkpoint.
			v := c64.ViT
			wantAct := s.act
			if s.act == "gelu" {
				wantAct = ""
			}
			if v.LayerNormEpsilon != s.eps || v.Activation != wantAct || v.Heads != s.heads || v.Classes != s.labels ||
				!slices.Equal(v.ImageShape(), []int{s.imgH, s.imgW, s.channels}) || v.PatchShape() != [2]int{s.patchH, s.patchW} {
				t.Errorf("imported config %+v does not describe %+v", v, s)
			}
			if s.pooler != (len(c64.Ignored) == 2) {
				t.Errorf("ignored tensors %v (pooler %v)", c64.Ignored, s.pooler)
			}
			if s.labels > 0 && (len(c64.Labels) != s.labels || c64.Labels[1] != "class 1") {
				t.Errorf("labels %v", c64.Labels)
			}
		})
	}
}

// TestExportRoundTrip writes prism's own ViT (non-square, several heads) in
// HuggingFace's layout, checks the files with the reference forward, and
// imports them back: the same tensors bit for bit and identical logits.
func TestExportRoundTrip(t *testing.T) {
	for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		t.Run(dtype.String(), func(t *testing.T) {
			v := models.ViTConfig{ImageSize: 6, ImageWidth: 10, PatchSize: 3, PatchWidth: 2, Channels: 2, Width: 8, Depth: 2,
				Heads: 4, MLPDim: 16, Classes: 3, LayerNormEpsilon: 1e-12, DType: dtype}
			rng := rand.New(rand.NewPCG(5, 5))
			const batch = 2
			spec := hfSpec{hidden: 8, layers: 2, heads: 4, inter: 16, act: "gelu", eps: 1e-12, imgH: 6, imgW: 10, patchH: 3, patchW: 2,
				channels: 2, labels: 3, qkvBias: true, prefix: "vit."}
			pixels := randomPixels(spec, batch, rng)
			images := nhwc(pixels)

			// prism's model, initialised by prism.
			ctx := context.New()
			models.SetSeed(ctx, 3)
			if _, err := context.ExecOnce(testBackend, ctx, func(ctx *context.Context, x *Node) *Node {
				return models.ViT(ctx, v, models.Run{}, x)
			}, tensors.FromShape(shapes.Make(dtype, batch, 6, 10, 2))); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, ctx, v, spec, pixels, images, batch)
		})
	}
}

func roundTrip(t *testing.T, ctx *context.Context, v models.ViTConfig, spec hfSpec, pixels [][][][]float64, images []float64, batch int) {
	if v.DType == dtypes.Float64 {
		roundTripT[float64](t, ctx, v, spec, pixels, images, batch)
	} else {
		roundTripT[float32](t, ctx, v, spec, pixels, images, batch)
	}
}

func roundTripT[T hfvit.Float](t *testing.T, ctx *context.Context, v models.ViTConfig, spec hfSpec, pixels [][][][]float64, images []float64, batch int) {
	params, err := hfvit.Variables[T](ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	_, logits := prismForward(t, v, params, images, batch)

	dir := t.TempDir()
	if err := hfvit.Export(dir, v, params, []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	// The files, read without the package: HuggingFace's names and shapes,
	// and the reference forward on them gives prism's logits.
	r, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v: transformers needs format=pt", r.Metadata())
	}
	want := randomCheckpoint(spec, rand.New(rand.NewPCG(1, 1))) // for the names and shapes only
	if len(r.Names()) != len(want) {
		t.Errorf("exported %d tensors, a ViTForImageClassification has %d", len(r.Names()), len(want))
	}
	files := map[string]hfTensor{}
	for name, w := range want {
		info, err := r.Info(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(info.Shape, w.shape) {
			t.Errorf("%s: shape %v, want %v", name, info.Shape, w.shape)
		}
		data, err := r.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = hfTensor{info.Shape, data}
	}
	_, refLogits := referenceForward(spec, files, pixels)
	tol := 1e-12
	if v.DType == dtypes.Float32 {
		tol = 2e-5
	}
	if d := maxRelDiff(logits, refLogits); d > tol {
		t.Errorf("reference forward of the exported files differs from prism's logits by %.3g", d)
	}
	var cfg map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"model_type": "vit", "hidden_act": "gelu", "layer_norm_eps": 1e-12, "qkv_bias": true,
		"hidden_size": 8.0, "num_attention_heads": 4.0, "intermediate_size": 16.0, "num_channels": 2.0} {
		if cfg[key] != want {
			t.Errorf("config.json %s = %v, want %v", key, cfg[key], want)
		}
	}
	if s, _ := json.Marshal([]any{cfg["image_size"], cfg["patch_size"], cfg["id2label"]}); string(s) != `[[6,10],[3,2],{"0":"a","1":"b","2":"c"}]` {
		t.Errorf("config.json image_size, patch_size, id2label = %s", s)
	}

	back, err := hfvit.Import[T](dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Params) != len(params) {
		t.Fatalf("imported %d tensors, exported %d", len(back.Params), len(params))
	}
	for i, p := range params {
		if b := back.Params[i]; b.Name != p.Name || !slices.Equal(b.Shape, p.Shape) || !slices.Equal(b.Data, p.Data) {
			t.Errorf("%s: not identical after export and import", p.Name)
		}
	}
	if back.ViT != v {
		t.Errorf("imported config %+v, exported %+v", back.ViT, v)
	}
	_, again := prismForward(t, back.ViT, back.Params, images, batch)
	if !slices.Equal(again, logits) {
		t.Errorf("logits after export and import differ: %v vs %v", again, logits)
	}
}
