package hfvit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/safetensors"
)

// A prism model directory (what `prism import hf-vit` writes):
//
//	model.safetensors   the variables, named as core/train's model files name them
//	                    ("blocks.0.attn.qkv.weight", "cls_token", "head.weight", …)
//	model.json          ModelInfo: the architecture, labels, input normalisation, provenance
const (
	ModelFile     = "model.safetensors"
	ModelInfoFile = "model.json"
	// ModelFormat is ModelInfo.Format.
	ModelFormat = "prism.vit/1"
	// SourceHuggingFace is Source.Format of a model imported from a
	// HuggingFace checkpoint.
	SourceHuggingFace = "huggingface-vit"
)

// ModelInfo describes a prism model directory.
type ModelInfo struct {
	Format string           `json:"format"`
	ViT    models.ViTConfig `json:"vit"`
	// Labels name the head's classes (nil: unnamed).
	Labels []string `json:"labels,omitempty"`
	// Normalize, when set, is the per-channel input normalisation the model
	// was trained with, x ↦ (x − Mean[c])/Std[c], on pixels in [0, 1].
	Normalize *Normalization `json:"normalize,omitempty"`
	Source    Source         `json:"source"`
}

// Normalization is a per-channel affine map of the input pixels.
type Normalization struct {
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// Source records where a model came from.
type Source struct {
	Format string `json:"format"`
	// Path is the directory it was imported from; NameOrPath config.json's
	// _name_or_path (the hub name, when the checkpoint was saved from one).
	Path       string `json:"path,omitempty"`
	NameOrPath string `json:"name_or_path,omitempty"`
	// Prefix is the backbone's key prefix in the checkpoint ("vit." or "").
	Prefix  string   `json:"prefix"`
	Ignored []string `json:"ignored,omitempty"`
}

// BaseModelName is the name PEFT's adapter_config.json gives the base model:
// config.json's _name_or_path when known, else the imported directory.
func (s Source) BaseModelName() string {
	if s.NameOrPath != "" {
		return s.NameOrPath
	}
	return s.Path
}

// Info is the ModelInfo of an imported checkpoint read from dir.
func (ck *Checkpoint[T]) Info(dir string) ModelInfo {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	info := ModelInfo{Format: ModelFormat, ViT: ck.ViT, Labels: ck.Labels,
		Source: Source{Format: SourceHuggingFace, Path: abs, NameOrPath: ck.HF.NameOrPath, Prefix: ck.Layout.Prefix, Ignored: ck.Ignored}}
	if p := ck.Preprocessor; p != nil && p.DoNormalize {
		info.Normalize = &Normalization{Mean: p.ImageMean, Std: p.ImageStd}
	}
	return info
}

// WriteModel writes a prism model directory: params to dir/model.safetensors
// (metadata "format": ModelFormat) and info to dir/model.json.
func WriteModel[T Float](dir string, info ModelInfo, params []Tensor[T]) error {
	if err := info.ViT.Validate(); err != nil {
		return fmt.Errorf("hfvit: writing %s: %w", dir, err)
	}
	want := PrismSpecs(info.ViT)
	if len(want) != len(params) {
		return fmt.Errorf("hfvit: writing %s: %d tensors, the ViT has %d", dir, len(params), len(want))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ts := make([]safetensors.Tensor, len(params))
	for i, p := range params {
		if p.Name != want[i].Name || !slices.Equal(p.Shape, want[i].Shape) {
			return fmt.Errorf("hfvit: writing %s: tensor %d is %q %v, expected %q %v", dir, i, p.Name, p.Shape, want[i].Name, want[i].Shape)
		}
		ts[i] = safetensors.FromFloats(p.Name, p.Shape, p.Data)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, ModelFile), ts, map[string]string{"format": ModelFormat}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, ModelInfoFile), info)
}

// ReadModelInfo reads dir/model.json and checks that dir/model.safetensors
// holds exactly the tensors of its ViT.
func ReadModelInfo(dir string) (ModelInfo, error) {
	var info ModelInfo
	path := filepath.Join(dir, ModelInfoFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return info, fmt.Errorf("prism model directory: %w", err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	if info.Format != ModelFormat {
		return info, fmt.Errorf("%s: format %q, want %q", path, info.Format, ModelFormat)
	}
	if err := info.ViT.Validate(); err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	r, err := safetensors.Open(filepath.Join(dir, ModelFile))
	if err != nil {
		return info, err
	}
	defer r.Close()
	var problems []string
	names := map[string]bool{}
	for _, s := range PrismSpecs(info.ViT) {
		names[s.Name] = true
		t, err := r.Info(s.Name)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("missing tensor %q (expected shape %v)", s.Name, s.Shape))
		case !slices.Equal(t.Shape, s.Shape):
			problems = append(problems, fmt.Sprintf("tensor %q has shape %v, expected %v", s.Name, t.Shape, s.Shape))
		}
	}
	for _, n := range r.Names() {
		if !names[n] {
			problems = append(problems, fmt.Sprintf("unexpected tensor %q", n))
		}
	}
	if len(problems) > 0 {
		return info, fmt.Errorf("%s does not match %s: %s", r.Name(), path, joinProblems(problems))
	}
	return info, nil
}
