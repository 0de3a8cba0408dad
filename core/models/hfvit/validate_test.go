package hfvit_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/models/hfvit"
	"github.com/prism-lora/prism/core/safetensors"
)

// TestImportValidation checks that checkpoints that do not match their
// config.json are refused with errors naming the tensor and its expected shape.
func TestImportValidation(t *testing.T) {
	s := importCases[0].spec // square: hidden 12, 2 layers, 5 labels, qkv biases
	base := randomCheckpoint(s, rand.New(rand.NewPCG(9, 9)))
	clone := func() map[string]hfTensor {
		out := map[string]hfTensor{}
		for k, v := range base {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		edit   func(ck map[string]hfTensor, cfg map[string]any)
		expect []string
	}{
		{"missing", func(ck map[string]hfTensor, _ map[string]any) {
			delete(ck, "vit.encoder.layer.1.attention.attention.key.weight")
			delete(ck, "vit.layernorm.bias")
		}, []string{`missing tensor "vit.encoder.layer.1.attention.attention.key.weight" (expected shape [12 12])`,
			`missing tensor "vit.layernorm.bias" (expected shape [12])`}},
		{"unexpected", func(ck map[string]hfTensor, _ map[string]any) {
			ck["vit.encoder.layer.2.output.dense.weight"] = hfTensor{[]int{12, 20}, make([]float64, 240)}
		}, []string{`unexpected tensor "vit.encoder.layer.2.output.dense.weight" [12 20]`}},
		{"shape", func(ck map[string]hfTensor, _ map[string]any) {
			ck["vit.embeddings.position_embeddings"] = hfTensor{[]int{1, 4, 12}, make([]float64, 48)}
			ck["vit.embeddings.patch_embeddings.projection.weight"] = hfTensor{[]int{12, 4, 4, 3}, make([]float64, 576)}
		}, []string{`tensor "vit.embeddings.position_embeddings" has shape [1 4 12], expected [1 5 12]`,
			`tensor "vit.embeddings.patch_embeddings.projection.weight" has shape [12 4 4 3], expected [12 3 4 4]`}},
		{"qkv bias off", func(_ map[string]hfTensor, cfg map[string]any) { cfg["qkv_bias"] = false },
			[]string{`unexpected tensor "vit.encoder.layer.0.attention.attention.query.bias" [12]`}},
		{"more layers", func(_ map[string]hfTensor, cfg map[string]any) { cfg["num_hidden_layers"] = 3 },
			[]string{`missing tensor "vit.encoder.layer.2.layernorm_before.weight" (expected shape [12])`}},
		{"labels", func(_ map[string]hfTensor, cfg map[string]any) {
			cfg["id2label"] = map[string]string{"0": "a", "1": "b"}
		}, []string{`"classifier.weight" has 5 rows, config.json has 2 labels`}},
		{"activation", func(_ map[string]hfTensor, cfg map[string]any) { cfg["hidden_act"] = "gelu_10" },
			[]string{`hidden_act "gelu_10" is not supported`}},
		{"patch", func(_ map[string]hfTensor, cfg map[string]any) { cfg["patch_size"] = 3 },
			[]string{`patch_size 3 does not divide image_size 8`}},
		{"model type", func(_ map[string]hfTensor, cfg map[string]any) { cfg["model_type"] = "deit" },
			[]string{`model_type "deit" is not a ViT`}},
		{"heads", func(_ map[string]hfTensor, cfg map[string]any) { cfg["num_attention_heads"] = 5 },
			[]string{`hidden_size 12 is not a multiple of num_attention_heads 5`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck, cfg := clone(), s.configJSON()
			tc.edit(ck, cfg)
			dir := t.TempDir()
			writeCheckpoint(t, dir, s, ck, safetensors.F32)
			writeConfig(t, dir, cfg)
			_, err := hfvit.Import[float32](dir)
			if err == nil {
				t.Fatal("Import succeeded")
			}
			for _, want := range tc.expect {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
	t.Run("pytorch only", func(t *testing.T) {
		dir := t.TempDir()
		writeConfig(t, dir, s.configJSON())
		if err := os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("pickle"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := hfvit.Import[float32](dir)
		if err == nil || !strings.Contains(err.Error(), "safe_serialization=True") {
			t.Errorf("err = %v, want a hint to convert to safetensors", err)
		}
	})
}

// TestImportSharded splits a checkpoint into two shards with an index, as
// transformers writes large models, and imports the same tensors.
func TestImportSharded(t *testing.T) {
	s := importCases[1].spec
	ck := randomCheckpoint(s, rand.New(rand.NewPCG(4, 2)))
	single := t.TempDir()
	writeCheckpoint(t, single, s, ck, safetensors.F32)
	want, err := hfvit.Import[float32](single)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeConfig(t, dir, s.configJSON())
	shards := [2][]safetensors.Tensor{}
	weightMap := map[string]string{}
	names := make([]string, 0, len(ck))
	for name := range ck {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		f := make([]float32, len(ck[name].data))
		for j, x := range ck[name].data {
			f[j] = float32(x)
		}
		shards[i%2] = append(shards[i%2], safetensors.FromFloats(name, ck[name].shape, f))
		weightMap[name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i%2]
	}
	for i, sh := range shards {
		file := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
		if err := safetensors.WriteFile(filepath.Join(dir, file), sh, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	index, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := hfvit.Import[float32](dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range want.Params {
		if !slices.Equal(got.Params[i].Data, p.Data) {
			t.Errorf("%s differs between the sharded and the single-file checkpoint", p.Name)
		}
	}
}

// TestModelDirectory writes an imported checkpoint as a prism model
// directory (with the preprocessor's normalisation) and reads it back.
func TestModelDirectory(t *testing.T) {
	s := importCases[0].spec
	src := t.TempDir()
	writeCheckpoint(t, src, s, randomCheckpoint(s, rand.New(rand.NewPCG(8, 1))), safetensors.F32)
	pre := `{"do_normalize": true, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
	        "do_rescale": true, "rescale_factor": 0.00392156862745098, "image_processor_type": "ViTImageProcessor"}`
	if err := os.WriteFile(filepath.Join(src, "preprocessor_config.json"), []byte(pre), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := hfvit.Import[float32](src)
	if err != nil {
		t.Fatal(err)
	}
	info := ck.Info(src)
	if info.Normalize == nil || !slices.Equal(info.Normalize.Std, []float64{0.229, 0.224, 0.225}) {
		t.Errorf("normalisation %+v", info.Normalize)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := hfvit.WriteModel(dir, info, ck.Params); err != nil {
		t.Fatal(err)
	}
	back, err := hfvit.ReadModelInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.ViT != ck.ViT || back.Source.Format != hfvit.SourceHuggingFace || back.Source.Prefix != "vit." || len(back.Labels) != 5 {
		t.Errorf("model.json read back as %+v", back)
	}
	r, err := safetensors.Open(filepath.Join(dir, hfvit.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	qkv, err := r.Float32s("blocks.1.attn.qkv.weight")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(qkv, ck.Params[slices.IndexFunc(ck.Params, func(p hfvit.Tensor[float32]) bool { return p.Name == "blocks.1.attn.qkv.weight" })].Data) {
		t.Error("model.safetensors does not hold the imported qkv weight")
	}
	// A model file that lacks a tensor is refused.
	if err := safetensors.WriteFile(filepath.Join(dir, hfvit.ModelFile), []safetensors.Tensor{safetensors.FromFloats("cls_token", []int{1, 1, 12}, make([]float32, 12))}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := hfvit.ReadModelInfo(dir); err == nil || !strings.Contains(err.Error(), `missing tensor "pos_embed" (expected shape [1 5 12])`) {
		t.Errorf("err = %v", err)
	}
}
