package hfvit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/safetensors"
)

// Files of a HuggingFace model directory.
const (
	ConfigFile       = "config.json"
	WeightsFile      = "model.safetensors"
	WeightsIndexFile = "model.safetensors.index.json" // sharded checkpoints
	PreprocessorFile = "preprocessor_config.json"
)

// Checkpoint is a HuggingFace ViT checkpoint converted to prism's layout.
type Checkpoint[T Float] struct {
	// ViT is prism's configuration; Classes is the classifier's output
	// count (0 when the checkpoint has no classifier, e.g. a bare ViTModel).
	ViT models.ViTConfig
	// HF is the checkpoint's config.json, Layout where its tensors were.
	HF     Config
	Layout Layout
	// Labels are id2label in index order (nil when config.json has none).
	Labels []string
	// Preprocessor is preprocessor_config.json (nil when absent).
	Preprocessor *Preprocessor
	// Params are prism's tensors (PrismSpecs(ViT)).
	Params []Tensor[T]
	// Ignored lists checkpoint tensors the classifier does not use (a
	// ViTModel's pooler, a masked-image-modelling mask token).
	Ignored []string
}

// source is a tensor of a (possibly sharded) checkpoint.
type source struct {
	reader *safetensors.Reader
	info   safetensors.Info
}

// openWeights opens dir's model.safetensors, or the shards its
// model.safetensors.index.json lists, and indexes every tensor by name.
func openWeights(dir string) (map[string]source, []*safetensors.Reader, error) {
	var files []string
	single := filepath.Join(dir, WeightsFile)
	index := filepath.Join(dir, WeightsIndexFile)
	if _, err := os.Stat(single); err == nil {
		files = []string{single}
	} else if data, err := os.ReadFile(index); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", index, err)
		}
		for _, f := range idx.WeightMap {
			if p := filepath.Join(dir, f); !slices.Contains(files, p) {
				files = append(files, p)
			}
		}
		slices.Sort(files)
	} else {
		hint := ""
		if _, err := os.Stat(filepath.Join(dir, "pytorch_model.bin")); err == nil {
			hint = " (the directory has pytorch_model.bin: prism reads only safetensors; convert it with transformers, " +
				"model.save_pretrained(dir, safe_serialization=True))"
		}
		return nil, nil, fmt.Errorf("hfvit: %s: no %s or %s%s", dir, WeightsFile, WeightsIndexFile, hint)
	}
	tensors := map[string]source{}
	var readers []*safetensors.Reader
	for _, f := range files {
		r, err := safetensors.Open(f)
		if err != nil {
			closeAll(readers)
			return nil, nil, err
		}
		readers = append(readers, r)
		for _, t := range r.Tensors() {
			if prev, dup := tensors[t.Name]; dup {
				closeAll(readers)
				return nil, nil, fmt.Errorf("hfvit: tensor %q is in both %s and %s", t.Name, prev.reader.Name(), f)
			}
			tensors[t.Name] = source{r, t}
		}
	}
	return tensors, readers, nil
}

func closeAll(rs []*safetensors.Reader) {
	for _, r := range rs {
		r.Close()
	}
}

// readFloats reads a float tensor as T: F16 and BF16 widen exactly; F64 is
// rounded to float32 only when T is float32 (the caller asked for it).
func readFloats[T Float](s source) ([]T, error) {
	if unsafe.Sizeof(*new(T)) == 8 {
		v, err := s.reader.Float64s(s.info.Name)
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(v))), len(v)), err
	}
	if s.info.DType == safetensors.F64 {
		v, err := s.reader.Float64s(s.info.Name)
		out := make([]T, len(v))
		for i, x := range v {
			out[i] = T(x)
		}
		return out, err
	}
	v, err := s.reader.Float32s(s.info.Name)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(v))), len(v)), err
}

// Import reads a HuggingFace ViT checkpoint directory — config.json and
// model.safetensors (or its shards) with the key layout of
// ViTForImageClassification (backbone under "vit.", "classifier.weight"),
// or of a bare ViTModel — and converts it to prism's ViT with values of type
// T (the stored dtype is widened exactly, or rounded to float32 when T is
// float32). The tensors must be exactly those the config implies: missing
// and unexpected tensors and wrong shapes are errors naming each tensor and
// its expected shape (a ViTModel's pooler and a mask token are ignored and
// listed in Ignored).
//
// The imported model computes what transformers computes in evaluation mode
// (no dropout) for pixel_values [B, C, H, W], given the same pixels as
// prism's images [B, H, W, C].
func Import[T Float](dir string) (*Checkpoint[T], error) {
	hf, err := ReadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("hfvit: %w", err)
	}
	labels, _ := hf.Labels() // validated
	tensors, readers, err := openWeights(dir)
	if err != nil {
		return nil, err
	}
	defer closeAll(readers)

	l := Layout{QKVBias: hf.QKVBias}
	for name := range tensors {
		if strings.HasPrefix(name, Prefix) {
			l.Prefix = Prefix
			break
		}
	}
	if c, ok := tensors["classifier.weight"]; ok {
		if len(c.info.Shape) != 2 || c.info.Shape[1] != hf.HiddenSize {
			return nil, fmt.Errorf("hfvit: %s: tensor \"classifier.weight\" has shape %v, expected [num_labels %d]", c.reader.Name(), c.info.Shape, hf.HiddenSize)
		}
		l.Classes = c.info.Shape[0]
		if labels != nil && len(labels) != l.Classes {
			return nil, fmt.Errorf("hfvit: %s: tensor \"classifier.weight\" has %d rows, %s has %d labels (id2label)",
				c.reader.Name(), l.Classes, ConfigFile, len(labels))
		}
	}
	dtype := dtypes.Float32
	if unsafe.Sizeof(*new(T)) == 8 {
		dtype = dtypes.Float64
	}
	v := hf.ViT(l.Classes, dtype)

	// Every expected tensor, and nothing else.
	var problems, ignored []string
	expected := map[string]bool{}
	for _, s := range l.HFSpecs(v) {
		expected[s.Name] = true
		t, ok := tensors[s.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing tensor %q (expected shape %v)", s.Name, s.Shape))
		case !slices.Equal(t.info.Shape, s.Shape):
			problems = append(problems, fmt.Sprintf("tensor %q has shape %v, expected %v", s.Name, t.info.Shape, s.Shape))
		case !t.info.DType.IsFloat():
			problems = append(problems, fmt.Sprintf("tensor %q has dtype %s, expected a float (F32, F16, BF16 or F64)", s.Name, t.info.DType))
		}
	}
	for _, name := range sortedKeys(tensors) {
		if expected[name] {
			continue
		}
		if isIgnorable(name, l.Prefix) {
			ignored = append(ignored, name)
			continue
		}
		problems = append(problems, fmt.Sprintf("unexpected tensor %q %v: not part of a ViTForImageClassification with this %s",
			name, tensors[name].info.Shape, ConfigFile))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("hfvit: %s does not match %s (%s): %s", dir, ConfigFile, describe(hf), joinProblems(problems))
	}
	params, err := FromHF(v, l, func(name string) ([]T, error) { return readFloats[T](tensors[name]) })
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint[T]{ViT: v, HF: hf, Layout: l, Labels: labels, Params: params, Ignored: ignored}
	if p, err := ReadPreprocessor(filepath.Join(dir, PreprocessorFile), hf.NumChannels); err == nil {
		ck.Preprocessor = &p
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("hfvit: %w", err)
	}
	return ck, nil
}

// isIgnorable reports tensors of ViT checkpoints that an image classifier
// does not use.
func isIgnorable(name, prefix string) bool {
	switch strings.TrimPrefix(name, prefix) {
	case "pooler.dense.weight", "pooler.dense.bias", "embeddings.mask_token":
		return true
	}
	return false
}

// describe summarises a config for error messages.
func describe(c Config) string {
	return fmt.Sprintf("hidden_size %d, %d layers, %d heads, intermediate_size %d, image %v, patch %v, %d channels, qkv_bias %v",
		c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize, c.ImageSize, c.PatchSize, c.NumChannels, c.QKVBias)
}

// Export writes prism's ViT v (params by PrismSpecs names) as a HuggingFace
// ViTForImageClassification checkpoint: dir/config.json and
// dir/model.safetensors (with the {"format": "pt"} metadata transformers
// expects), q, k and v split from blocks.i.attn.qkv, the patch weight
// permuted back to a Conv2d kernel. labels (nil: LABEL_i) name the classes.
func Export[T Float](dir string, v models.ViTConfig, params []Tensor[T], labels []string) error {
	hf, err := ConfigFor(v, labels)
	if err != nil {
		return err
	}
	ts, err := ToHF(v, params)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := make([]safetensors.Tensor, len(ts))
	for i, t := range ts {
		out[i] = safetensors.FromFloats(t.Name, t.Shape, t.Data)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), out, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, ConfigFile), hf)
}

// writeJSON writes v indented to path through a temporary file renamed into place.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
