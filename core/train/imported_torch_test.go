package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/adapter/peft"
	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/safetensors"
)

// torchPython is Debian's interpreter with python3-torch (the python3 on
// PATH may be another one).
const torchPython = "/usr/bin/python3"

// requireTorch skips the test without PyTorch, unless PRISM_REQUIRE_TORCH=1.
// (The same properties are checked without PyTorch by core/models/hfvit's
// reference forward and core/adapter/peft's tests.)
func requireTorch(t *testing.T) {
	t.Helper()
	if err := exec.Command(torchPython, "-c", "import torch, numpy").Run(); err != nil {
		if os.Getenv("PRISM_REQUIRE_TORCH") == "1" {
			t.Fatalf("PRISM_REQUIRE_TORCH=1 but %s cannot import torch: %v", torchPython, err)
		}
		t.Skipf("%s has no torch (Debian python3-torch): %v", torchPython, err)
	}
}

// torchLogits runs testdata/torch_vit_peft.py on images [n, H, W, C], once
// for each PEFT adapter directory ("-": the checkpoint alone).
func torchLogits(t *testing.T, hfDir string, images []float32, n int, peftDirs ...string) [][]float64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "images.f32")
	raw := make([]byte, 4*len(images))
	for i, x := range images {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(torchPython, append([]string{"testdata/torch_vit_peft.py", hfDir, path, strconv.Itoa(n)}, peftDirs...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("torch check: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var logits [][][]float64
	if err := json.Unmarshal(out, &logits); err != nil || len(logits) != len(peftDirs) {
		t.Fatalf("torch check output: %v\n%s", err, out)
	}
	flat := make([][]float64, len(logits))
	for i, rows := range logits {
		for _, r := range rows {
			flat[i] = append(flat[i], r...)
		}
	}
	return flat
}

// TestTorchReproducesFineTunedHFViT: PyTorch's operators, given the
// HuggingFace checkpoint, compute the imported model's logits; given also
// the exported PEFT adapter (LoRA as PEFT applies it, on the original
// weights; the new classifier from modules_to_save), they compute the
// fine-tuned model's task-B logits — for mid (rank-2r conversion) and DoRA.
func TestTorchReproducesFineTunedHFViT(t *testing.T) {
	requireTorch(t)
	hfDir, modelDir, v := tinyHFViT(t, 10)
	info, err := hfvit.ReadModelInfo(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	net, err := ImportedViTNetwork(info, []int{8, 8, 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	const n = 4
	images := make([]float32, n*16*16*3) // model-size images, fed to both sides as they are
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	compare := func(what string, got, want []float64) {
		worst, scale := 0.0, 1.0
		for i := range want {
			worst, scale = math.Max(worst, math.Abs(got[i]-want[i])), math.Max(scale, math.Abs(want[i]))
		}
		if len(got) != len(want) || worst > 1e-4*scale {
			t.Errorf("%s: PyTorch and prism differ by %.3g (scale %.3g)", what, worst, scale)
		} else {
			t.Logf("%s: PyTorch and prism agree within %.2g", what, worst/scale)
		}
	}
	dirs := []string{"-"}
	want := [][]float64{prismModelLogits(t, modelDir, v, nil, nil, images, n)}
	what := []string{"imported checkpoint"}

	cache := t.TempDir()
	pre := PretrainConfig{Network: net, Task: "digits", Model: modelDir}
	for _, method := range []string{adapter.MethodMid, adapter.MethodDoRA} {
		dir := filepath.Join(t.TempDir(), "run")
		cfg := FinetuneConfig{Pretrain: pre, Task: "digits-transposed", Method: method, Rank: 2, Alpha: 4,
			Hyper: Hyper{Epochs: 1, BatchSize: 32, LearningRate: 1e-2, Warmup: 0.1, Clip: 1, Seed: 3}, TrainSubset: 320,
			TestSubset: 100, OldTestSubset: 100, RunDir: dir, ProbeExamples: 10}
		if _, err := Finetune(context.Background(), cfg, testOptions(t, cache)); err != nil {
			t.Fatal(err)
		}
		trained, err := peft.ReadTrained(filepath.Join(dir, RunAdaptersFile))
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		if _, err := peft.Export(out, trained, peft.Options{Naming: hfvit.PEFTNaming(v, info.Source.Prefix)}); err != nil {
			t.Fatal(err)
		}
		// prism's fine-tuned model: the merged layers and the new head.
		merged := map[string][]float32{}
		w1 := mustOpen(t, filepath.Join(dir, RunFinetunedFile))
		for _, l := range trained.Layers {
			m, err := safetensors.ReadMatrix[float64](w1, l.Name)
			if err != nil {
				t.Fatal(err)
			}
			merged[l.Name] = toF32(m.Data)
		}
		dirs = append(dirs, out)
		want = append(want, prismModelLogits(t, modelDir, v, merged, &trained.Saved[0], images, n))
		what = append(what, method+" fine-tuned, task-B head")
	}
	for i, got := range torchLogits(t, hfDir, images, n, dirs...) {
		compare(what[i], got, want[i])
	}
}

func toF32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// prismModelLogits runs prism's ViT from the model file on model-size
// images [n, H, W, C], with the weights of the layers in replace swapped
// for the given ones, through the model's own head, or through head (the
// trained new head) when it is set.
func prismModelLogits(t *testing.T, modelDir string, v models.ViTConfig, replace map[string][]float32, head *peft.SavedModule,
	images []float32, n int) []float64 {
	t.Helper()
	be, err := backend.New("go")
	if err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	if _, err := LoadModel(filepath.Join(modelDir, hfvit.ModelFile), ctx); err != nil {
		t.Fatal(err)
	}
	mctx := ctx.In(ModelScope)
	for name, w := range replace {
		s := mctx.In(name)
		vr := s.GetVariableByScopeAndName(s.Scope(), "weight")
		if err := vr.SetValue(tensors.FromFlatDataAndDimensions(w, vr.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
	name, classes := models.DefaultHead, v.Classes
	if head != nil {
		name, classes = head.Name, head.Weight.Rows
		mctx.In(name).VariableWithValue("weight", tensors.FromFlatDataAndDimensions(toF32(head.Weight.Data), head.Weight.Rows, head.Weight.Cols))
		mctx.In(name).VariableWithValue("bias", tensors.FromFlatDataAndDimensions(toF32(head.Bias), len(head.Bias)))
	}
	out, err := mlctx.ExecOnce(be, ctx, func(ctx *mlctx.Context, x *Node) *Node {
		f := models.ViTFeatures(ctx.In(ModelScope), v, models.Run{}, x)
		return models.Head(ctx.In(ModelScope), models.Run{}, name, f, classes)
	}, tensors.FromFlatDataAndDimensions(images, n, v.ImageSize, v.ImageSize, v.Channels))
	if err != nil {
		t.Fatal(err)
	}
	var flat []float64
	for _, x := range tensors.MustCopyFlatData[float32](out) {
		flat = append(flat, float64(x))
	}
	return flat
}
