package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/adapter/peft"
	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/safetensors"
)

// tinyHFViT writes a HuggingFace ViT checkpoint (16×16×3 images, 4×4
// patches, the given number of classes, ImageNet's normalisation in preprocessor_config.json)
// drawn by prism's initialiser, imports it as a prism model directory and
// returns both directories.
func tinyHFViT(t *testing.T, classes int) (hfDir, modelDir string, v models.ViTConfig) {
	t.Helper()
	v = models.ViTConfig{ImageSize: 16, Channels: 3, PatchSize: 4, Width: 16, Depth: 1, Heads: 2, MLPDim: 32, Classes: classes,
		LayerNormEpsilon: 1e-12, DType: dtypes.Float32}
	b, err := backend.New("go")
	if err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	models.SetSeed(ctx, 5)
	if _, err := mlctx.ExecOnce(b, ctx, func(ctx *mlctx.Context, x *Node) *Node { return models.ViT(ctx, v, models.Run{}, x) },
		tensors.FromShape(shapes.Make(dtypes.Float32, 1, 16, 16, 3))); err != nil {
		t.Fatal(err)
	}
	params, err := hfvit.Variables[float32](ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	hfDir, modelDir = filepath.Join(root, "hf"), filepath.Join(root, "model")
	if err := hfvit.Export(hfDir, v, params, nil); err != nil {
		t.Fatal(err)
	}
	pre := `{"do_normalize": true, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}`
	if err := os.WriteFile(filepath.Join(hfDir, hfvit.PreprocessorFile), []byte(pre), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := hfvit.Import[float32](hfDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := hfvit.WriteModel(modelDir, ck.Info(hfDir), ck.Params); err != nil {
		t.Fatal(err)
	}
	return hfDir, modelDir, v
}

// TestImportedViTInput checks the imported network's input transform
// (upsampling, channel repetition, normalisation) against the same done by
// hand on the host.
func TestImportedViTInput(t *testing.T) {
	_, modelDir, v := tinyHFViT(t, 10)
	info, err := hfvit.ReadModelInfo(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	net, err := ImportedViTNetwork(info, []int{8, 8, 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 3
	small := make([]float32, batch*8*8)
	for i := range small {
		small[i] = rng.Float32()
	}
	big := make([]float32, batch*16*16*3) // by hand: nearest ×2, channel copied, (x − mean)/std
	mean, std := info.Normalize.Mean, info.Normalize.Std
	for b := range batch {
		for y := range 16 {
			for x := range 16 {
				for c := range 3 {
					big[((b*16+y)*16+x)*3+c] = float32((float64(small[(b*8+y/2)*8+x/2]) - mean[c]) / std[c])
				}
			}
		}
	}
	be, err := backend.New("go")
	if err != nil {
		t.Fatal(err)
	}
	logits := func(features func(ctx *mlctx.Context, x *Node) *Node, x *tensors.Tensor) []float32 {
		ctx := mlctx.New()
		if _, err := LoadModel(filepath.Join(modelDir, hfvit.ModelFile), ctx); err != nil {
			t.Fatal(err)
		}
		out, err := mlctx.ExecOnce(be, ctx, func(ctx *mlctx.Context, x *Node) *Node {
			return models.Head(ctx.In(ModelScope), models.Run{}, models.DefaultHead, features(ctx.In(ModelScope), x), 10)
		}, x)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	got := logits(func(ctx *mlctx.Context, x *Node) *Node { return net.Features(ctx, models.Dense, x) },
		tensors.FromFlatDataAndDimensions(small, batch, 8, 8, 1))
	want := logits(func(ctx *mlctx.Context, x *Node) *Node { return models.ViTFeatures(ctx, v, models.Run{}, x) },
		tensors.FromFlatDataAndDimensions(big, batch, 16, 16, 3))
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5*math.Max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("logit %d: imported network %v, by hand %v", i, got[i], want[i])
		}
	}
	if _, err := ImportedViTNetwork(info, []int{6, 6, 1}); err == nil || !strings.Contains(err.Error(), "integer factors") {
		t.Errorf("6×6 images: err = %v", err)
	}
	if _, err := ImportedViTNetwork(info, []int{8, 8, 2}); err == nil || !strings.Contains(err.Error(), "channels") {
		t.Errorf("2 channels: err = %v", err)
	}
}

// TestFinetuneImportedHFViT fine-tunes an imported HuggingFace ViT (task A
// digits with its own 10-class head, task B transposed digits), exports the
// adapters with transformers' module names and checks, from the files
// alone, that PEFT's LoRA on the HuggingFace checkpoint's own query and
// patch-projection weights gives the fine-tuned weights.
func TestFinetuneImportedHFViT(t *testing.T) {
	hfDir, modelDir, v := tinyHFViT(t, 10)
	info, err := hfvit.ReadModelInfo(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	net, err := ImportedViTNetwork(info, []int{8, 8, 1})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	pre := PretrainConfig{Network: net, Task: "digits", Model: modelDir, Hyper: DefaultPretrainHyper()}
	p, err := Pretrain(context.Background(), pre, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Imported || p.Classes != 10 || p.ModelPath != filepath.Join(modelDir, hfvit.ModelFile) {
		t.Errorf("pretrained %+v", p)
	}

	dir := filepath.Join(t.TempDir(), "run")
	cfg := FinetuneConfig{Pretrain: pre, Task: "digits-transposed", Method: adapter.MethodMid, Rank: 2, Alpha: 4,
		Hyper: Hyper{Epochs: 1, BatchSize: 32, LearningRate: 1e-2, Warmup: 0.1, Clip: 1, Seed: 3}, TrainSubset: 320,
		TestSubset: 100, OldTestSubset: 100, RunDir: dir, ProbeExamples: 10}
	res, err := Finetune(context.Background(), cfg, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	if !res.PretrainCached || res.Pretrained != p.Key || len(res.Layers) != 5 {
		t.Errorf("result %+v", res)
	}
	trained, err := peft.ReadTrained(filepath.Join(dir, RunAdaptersFile))
	if err != nil {
		t.Fatal(err)
	}
	if abs, _ := filepath.Abs(modelDir); trained.Metadata[peft.MetaBaseModel] != abs {
		t.Errorf("base model %q, want %q", trained.Metadata[peft.MetaBaseModel], abs)
	}
	out := t.TempDir()
	if _, err := peft.Export(out, trained, peft.Options{Naming: hfvit.PEFTNaming(v, info.Source.Prefix), Float64: true}); err != nil {
		t.Fatal(err)
	}
	adapters := mustOpen(t, filepath.Join(out, peft.WeightsFile))
	hf := mustOpen(t, filepath.Join(hfDir, hfvit.WeightsFile))
	w1File := mustOpen(t, filepath.Join(dir, RunFinetunedFile))
	scaling := cfg.AdapterConfig().Scale() // = lora_alpha/r of the export (checked in core/adapter/peft)
	d := v.Width

	// query: rows [0, d) of blocks.0.attn.qkv.
	q0, err := safetensors.ReadMatrix[float64](hf, "vit.encoder.layer.0.attention.attention.query.weight")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := safetensors.ReadMatrix[float64](adapters, "base_model.model.vit.encoder.layer.0.attention.attention.query.lora_A.weight")
	b, _ := safetensors.ReadMatrix[float64](adapters, "base_model.model.vit.encoder.layer.0.attention.attention.query.lora_B.weight")
	qkv1, err := safetensors.ReadMatrix[float64](w1File, "blocks.0.attn.qkv")
	if err != nil {
		t.Fatal(err)
	}
	if a.Rows != 4 || b.Rows != d || a.Cols != d {
		t.Fatalf("query lora_A %d×%d, lora_B %d×%d", a.Rows, a.Cols, b.Rows, b.Cols)
	}
	worst, change := 0.0, 0.0
	for i := range d {
		for j := range d {
			change = math.Max(change, math.Abs(q0.Data[i*d+j]-qkv1.Data[i*d+j]))
			s := 0.0
			for k := range a.Rows {
				s += b.Data[i*a.Rows+k] * a.Data[k*d+j]
			}
			worst = math.Max(worst, math.Abs(q0.Data[i*d+j]+scaling*s-qkv1.Data[i*d+j]))
		}
	}
	if worst > 1e-6 || change < 1e-3 {
		t.Errorf("query: HF weight + PEFT LoRA differs from the fine-tuned rows by %.3g (fine-tuning changed them by %.3g)", worst, change)
	}

	// The patch projection, a Conv2d: kernel [d, 3, 4, 4] + scaling·B·A.
	kernel, err := hf.Float64s("vit.embeddings.patch_embeddings.projection.weight")
	if err != nil {
		t.Fatal(err)
	}
	ka, err := adapters.Float64s("base_model.model.vit.embeddings.patch_embeddings.projection.lora_A.weight")
	if err != nil {
		t.Fatal(err)
	}
	kb, err := adapters.Float64s("base_model.model.vit.embeddings.patch_embeddings.projection.lora_B.weight")
	if err != nil {
		t.Fatal(err)
	}
	if sh, _ := adapters.Info("base_model.model.vit.embeddings.patch_embeddings.projection.lora_A.weight"); !slices.Equal(sh.Shape, []int{4, 3, 4, 4}) {
		t.Errorf("conv lora_A shape %v", sh.Shape)
	}
	patch1, err := safetensors.ReadMatrix[float64](w1File, "patch_embed.proj")
	if err != nil {
		t.Fatal(err)
	}
	worst = 0
	for o := range d {
		for c := range 3 {
			for i := range 4 {
				for j := range 4 {
					s := 0.0
					for k := range 4 {
						s += kb[o*4+k] * ka[((k*3+c)*4+i)*4+j]
					}
					got := kernel[((o*3+c)*4+i)*4+j] + scaling*s
					worst = math.Max(worst, math.Abs(got-patch1.Data[o*48+(i*4+j)*3+c]))
				}
			}
		}
	}
	if worst > 1e-6 {
		t.Errorf("patch projection: HF kernel + PEFT LoRA differs from the fine-tuned weight by %.3g", worst)
	}

	// A model whose head does not fit task A is refused.
	_, wrongDir, _ := tinyHFViT(t, 7)
	wrongInfo, err := hfvit.ReadModelInfo(wrongDir)
	if err != nil {
		t.Fatal(err)
	}
	wrongNet, err := ImportedViTNetwork(wrongInfo, []int{8, 8, 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Pretrain(context.Background(), PretrainConfig{Network: wrongNet, Task: "digits", Model: wrongDir}, testOptions(t, cache))
	if err == nil || !strings.Contains(err.Error(), "head of 7 classes, task A digits has 10") {
		t.Errorf("7-class head on digits: err = %v", err)
	}
	// The network must be the one the directory describes.
	_, err = Pretrain(context.Background(), PretrainConfig{Network: digitsPretrain().Network, Task: "digits", Model: modelDir}, testOptions(t, cache))
	if err == nil || !strings.Contains(err.Error(), "not the one model directory") {
		t.Errorf("mismatched network: err = %v", err)
	}
}
