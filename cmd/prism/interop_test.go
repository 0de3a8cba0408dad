package main

import (
	"encoding/json"
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
	"github.com/spf13/pflag"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/safetensors"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// writeHFViT writes a small HuggingFace ViT checkpoint for 8×8×1 images
// with a 10-class head (the digits task), drawn by prism's initialiser.
func writeHFViT(t *testing.T, dir string) {
	t.Helper()
	v := models.ViTConfig{ImageSize: 8, Channels: 1, PatchSize: 4, Width: 8, Depth: 1, Heads: 2, MLPDim: 16, Classes: 10,
		LayerNormEpsilon: 1e-12, DType: dtypes.Float32}
	b, err := backend.New("go")
	if err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	models.SetSeed(ctx, 9)
	if _, err := mlctx.ExecOnce(b, ctx, func(ctx *mlctx.Context, x *Node) *Node { return models.ViT(ctx, v, models.Run{}, x) },
		tensors.FromShape(shapes.Make(dtypes.Float32, 1, 8, 8, 1))); err != nil {
		t.Fatal(err)
	}
	params, err := hfvit.Variables[float32](ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := hfvit.Export(dir, v, params, nil); err != nil {
		t.Fatal(err)
	}
}

// TestInteropCommands: import a HuggingFace ViT, fine-tune it, export the
// adapters for PEFT and the model back to HuggingFace's layout.
func TestInteropCommands(t *testing.T) {
	catalogtest.Open(t, "digits")
	root := t.TempDir()
	hf, model, run, adapters, back := filepath.Join(root, "hf"), filepath.Join(root, "model"), filepath.Join(root, "run"),
		filepath.Join(root, "peft"), filepath.Join(root, "hf-back")
	writeHFViT(t, hf)

	stdout, _, err := runPrism(t, "import", "hf-vit", hf, "--out", model)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ViT: [8 8 1] images, patch [4 4], width 8, depth 1, heads 2, MLP 16", "LayerNorm ε 1e-12", "10 classes", "written"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("import output lacks %q:\n%s", want, stdout)
		}
	}

	stdout, _, err = runPrism(t, "finetune", "--pretrained", model, "--pretrain-task", "digits", "--task", "digits",
		"--method", "pissa", "--rank", "2", "--alpha", "4", "--epochs", "1", "--batch", "32", "--lr", "0.01",
		"--run-dir", run, "--cache-dir", filepath.Join(root, "cache"), "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "pretrained model from the cache") || !strings.Contains(stdout, "task A accuracy") {
		t.Errorf("finetune output:\n%s", stdout)
	}

	stdout, _, err = runPrism(t, "export", "peft", run, "--out", adapters)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rank-4 LoRA on the original weights", "r 4, lora_alpha 8, scaling 2", "(hf names)", "modules to save  classifier"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("export peft output lacks %q:\n%s", want, stdout)
		}
	}
	var cfg struct {
		TargetModules []string `json:"target_modules"`
		Base          string   `json:"base_model_name_or_path"`
	}
	data, err := os.ReadFile(filepath.Join(adapters, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.TargetModules, "vit.encoder.layer.0.attention.attention.value") ||
		!slices.Contains(cfg.TargetModules, "vit.embeddings.patch_embeddings.projection") || len(cfg.TargetModules) != 7 {
		t.Errorf("target_modules %v", cfg.TargetModules)
	}
	if abs, _ := filepath.Abs(hf); cfg.Base != abs {
		t.Errorf("base_model_name_or_path %q, want the imported checkpoint %q", cfg.Base, abs)
	}
	if _, _, err := runPrism(t, "export", "peft", run, "--out", filepath.Join(root, "peft-prism"), "--names", "prism", "--json"); err != nil {
		t.Fatal(err)
	}

	// The imported model written back in HuggingFace's layout is the original, bit for bit.
	if _, _, err := runPrism(t, "export", "hf-vit", model, "--out", back); err != nil {
		t.Fatal(err)
	}
	a, err := safetensors.Open(filepath.Join(hf, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := safetensors.Open(filepath.Join(back, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !slices.Equal(a.Names(), b.Names()) {
		t.Fatalf("tensors %v, originally %v", b.Names(), a.Names())
	}
	for _, name := range a.Names() {
		x, _ := a.Raw(name)
		y, _ := b.Raw(name)
		if !slices.Equal(x, y) {
			t.Errorf("%s differs after import and export", name)
		}
	}

	// Mistakes name the flag or the file.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "hf-vit", hf}, "--out is required"},
		{[]string{"import", "hf-vit", root, "--out", filepath.Join(root, "x")}, "config.json"},
		{[]string{"export", "peft", hf, "--out", filepath.Join(root, "y")}, "no trained adapters"},
		{[]string{"export", "peft", run, "--out", filepath.Join(root, "y"), "--names", "torch"}, `--names "torch"`},
		{[]string{"export", "hf-vit", hf, "--out", filepath.Join(root, "z")}, "neither a prism model directory"},
		{[]string{"finetune", "--pretrained", model, "--pretrain-task", "digits", "--task", "digits", "--vit-width", "32"},
			"--vit-width does not apply with --pretrained"},
		{[]string{"finetune", "--pretrained", model, "--pretrain-task", "mnist", "--task", "digits"}, "upsampled"},
	} {
		_, _, err := runPrism(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("prism %v: error %v, want it to say %q", c.args, err, c.want)
		}
	}
}

// Every interop command's --help explains every flag.
func TestInteropHelp(t *testing.T) {
	for _, path := range [][]string{{"import"}, {"import", "hf-vit"}, {"export"}, {"export", "peft"}, {"export", "hf-vit"}, {"finetune"}} {
		stdout, _, err := runPrism(t, append(path, "--help")...)
		if err != nil {
			t.Fatalf("%v --help: %v", path, err)
		}
		cmd, _, err := newRootCmd().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Usage == "" || !strings.Contains(stdout, "--"+f.Name) {
				t.Errorf("prism %s --help does not explain --%s", strings.Join(path, " "), f.Name)
			}
		})
	}
	stdout, _, _ := runPrism(t, "export", "peft", "--help")
	for _, want := range []string{"ΔW = s·(B′A′ − BA)", "lora_alpha = s·2r", "lora_magnitude_vector", "base_model.model.MODULE.lora_A.weight"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("export peft --help does not explain %q", want)
		}
	}
}
