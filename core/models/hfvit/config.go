package hfvit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/models"
)

// Size is an image or patch size as HuggingFace's config.json writes it:
// one integer for a square, or [height, width].
type Size struct{ Height, Width int }

// Square returns the size s×s.
func Square(s int) Size { return Size{s, s} }

// String is the size as config.json writes it: "16" or "[16, 8]".
func (s Size) String() string {
	if s.Height == s.Width {
		return strconv.Itoa(s.Height)
	}
	return fmt.Sprintf("[%d, %d]", s.Height, s.Width)
}

// MarshalJSON writes an integer for a square size, else [height, width].
func (s Size) MarshalJSON() ([]byte, error) {
	if s.Height == s.Width {
		return json.Marshal(s.Height)
	}
	return json.Marshal([2]int{s.Height, s.Width})
}

// UnmarshalJSON reads an integer or a list of two integers.
func (s *Size) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*s = Size{n, n}
		return nil
	}
	var hw []int
	if err := json.Unmarshal(b, &hw); err != nil || len(hw) != 2 {
		return fmt.Errorf("size %s: want an integer or [height, width]", bytes.TrimSpace(b))
	}
	*s = Size{hw[0], hw[1]}
	return nil
}

// Config is HuggingFace transformers' ViTConfig as config.json stores it: the
// fields that define a ViTForImageClassification's computation, plus the
// labels. Fields missing from a file take ViTConfig's defaults (see
// DefaultConfig).
type Config struct {
	Architectures             []string          `json:"architectures,omitempty"`
	ModelType                 string            `json:"model_type"`
	HiddenSize                int               `json:"hidden_size"`
	NumHiddenLayers           int               `json:"num_hidden_layers"`
	NumAttentionHeads         int               `json:"num_attention_heads"`
	IntermediateSize          int               `json:"intermediate_size"`
	HiddenAct                 string            `json:"hidden_act"`
	HiddenDropoutProb         float64           `json:"hidden_dropout_prob"`
	AttentionProbsDropoutProb float64           `json:"attention_probs_dropout_prob"`
	InitializerRange          float64           `json:"initializer_range"`
	LayerNormEps              float64           `json:"layer_norm_eps"`
	ImageSize                 Size              `json:"image_size"`
	PatchSize                 Size              `json:"patch_size"`
	NumChannels               int               `json:"num_channels"`
	QKVBias                   bool              `json:"qkv_bias"`
	EncoderStride             int               `json:"encoder_stride"`
	ID2Label                  map[string]string `json:"id2label,omitempty"`
	Label2ID                  map[string]int    `json:"label2id,omitempty"`
	TorchDType                string            `json:"torch_dtype,omitempty"`
	NameOrPath                string            `json:"_name_or_path,omitempty"`
}

// DefaultConfig is transformers' ViTConfig() (google/vit-base-patch16-224's
// architecture): 224×224×3 images, 16×16 patches, width 768, 12 layers of 12
// heads, MLP 3072, exact GELU, LayerNorm ε 1e-12, biases on q, k, v.
func DefaultConfig() Config {
	return Config{
		ModelType: ModelType, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12, IntermediateSize: 3072,
		HiddenAct: "gelu", InitializerRange: 0.02, LayerNormEps: 1e-12,
		ImageSize: Square(224), PatchSize: Square(16), NumChannels: 3, QKVBias: true, EncoderStride: 16,
	}
}

// ModelType is config.json's model_type of a ViT.
const ModelType = "vit"

// ParseConfig decodes a config.json over DefaultConfig and validates it;
// errors name file (the path, for messages).
func ParseConfig(file string, data []byte) (Config, error) {
	c := DefaultConfig()
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// ReadConfig reads and validates a config.json.
func ReadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(path, data)
}

// Validate reports the first field prism cannot represent exactly.
func (c Config) Validate() error {
	pos := func(name string, v int) error {
		if v <= 0 {
			return fmt.Errorf("%s is %d, want > 0", name, v)
		}
		return nil
	}
	if c.ModelType != ModelType {
		return fmt.Errorf("model_type %q is not a ViT (want %q)", c.ModelType, ModelType)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"intermediate_size", c.IntermediateSize}, {"num_channels", c.NumChannels}, {"image_size height", c.ImageSize.Height},
		{"image_size width", c.ImageSize.Width}, {"patch_size height", c.PatchSize.Height}, {"patch_size width", c.PatchSize.Width}} {
		if err := pos(f.name, f.v); err != nil {
			return err
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if c.ImageSize.Height%c.PatchSize.Height != 0 || c.ImageSize.Width%c.PatchSize.Width != 0 {
		// The convolution would drop the image's last rows or columns; prism's
		// patchify does not crop.
		return fmt.Errorf("patch_size %v does not divide image_size %v", c.PatchSize, c.ImageSize)
	}
	if !(c.LayerNormEps > 0) {
		return fmt.Errorf("layer_norm_eps is %v, want > 0", c.LayerNormEps)
	}
	if !hfActivations[c.HiddenAct] {
		return fmt.Errorf("hidden_act %q is not supported (prism computes gelu, gelu_python, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, silu, swish)", c.HiddenAct)
	}
	if _, err := c.Labels(); err != nil {
		return err
	}
	return nil
}

// hfActivations are transformers' ACT2FN names prism computes exactly
// (models.Activation): gelu and gelu_python are erf's GELU; gelu_new,
// gelu_pytorch_tanh and gelu_fast the tanh approximation.
var hfActivations = map[string]bool{"gelu": true, "gelu_python": true, "gelu_new": true, "gelu_pytorch_tanh": true,
	"gelu_fast": true, "quick_gelu": true, "relu": true, "silu": true, "swish": true}

// Labels returns id2label in index order (nil when the config has none).
func (c Config) Labels() ([]string, error) {
	if len(c.ID2Label) == 0 {
		return nil, nil
	}
	labels := make([]string, len(c.ID2Label))
	for k, v := range c.ID2Label {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(labels) {
			return nil, fmt.Errorf("id2label key %q: want the indices 0…%d", k, len(labels)-1)
		}
		labels[i] = v
	}
	return labels, nil
}

// ViT is the prism configuration that computes what this config's
// ViTForImageClassification computes, with classes outputs of the head and
// variables of dtype (Float32 or Float64).
func (c Config) ViT(classes int, dtype dtypes.DType) models.ViTConfig {
	v := models.ViTConfig{
		ImageSize: c.ImageSize.Height, Channels: c.NumChannels, PatchSize: c.PatchSize.Height,
		Width: c.HiddenSize, Depth: c.NumHiddenLayers, Heads: c.NumAttentionHeads, MLPDim: c.IntermediateSize,
		Classes: classes, LayerNormEpsilon: c.LayerNormEps, DType: dtype,
	}
	if c.ImageSize.Width != c.ImageSize.Height {
		v.ImageWidth = c.ImageSize.Width
	}
	if c.PatchSize.Width != c.PatchSize.Height {
		v.PatchWidth = c.PatchSize.Width
	}
	if c.HiddenAct != "gelu" && c.HiddenAct != "gelu_python" {
		v.Activation = c.HiddenAct
	}
	return v
}

// ConfigFor is the HuggingFace config of prism's ViT v (a
// ViTForImageClassification with v.Classes labels, named by labels when
// given), the inverse of Config.ViT.
func ConfigFor(v models.ViTConfig, labels []string) (Config, error) {
	if err := v.Validate(); err != nil {
		return Config{}, err
	}
	if labels != nil && len(labels) != v.Classes {
		return Config{}, fmt.Errorf("hfvit: %d labels for %d classes", len(labels), v.Classes)
	}
	shape, patch := v.ImageShape(), v.PatchShape()
	c := DefaultConfig()
	c.Architectures = []string{"ViTForImageClassification"}
	c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize = v.Width, v.Depth, v.Heads, v.MLPDim
	c.HiddenAct = "gelu"
	if v.Activation != "" {
		c.HiddenAct = v.Activation
		if v.Activation == "gelu_tanh" {
			c.HiddenAct = "gelu_pytorch_tanh"
		}
	}
	c.LayerNormEps = v.LayerNormEpsilon
	if c.LayerNormEps == 0 {
		c.LayerNormEps = 1e-5 // prism's default
	}
	c.ImageSize, c.PatchSize, c.NumChannels = Size{shape[0], shape[1]}, Size{patch[0], patch[1]}, v.Channels
	c.EncoderStride = patch[0]
	c.TorchDType = "float32"
	if v.DType == dtypes.Float64 {
		c.TorchDType = "float64"
	}
	c.ID2Label, c.Label2ID = map[string]string{}, map[string]int{}
	for i := range v.Classes {
		name := "LABEL_" + strconv.Itoa(i) // transformers' default names
		if labels != nil {
			name = labels[i]
		}
		c.ID2Label[strconv.Itoa(i)] = name
		c.Label2ID[name] = i
	}
	return c, nil
}

// Preprocessor is what prism uses of a preprocessor_config.json
// (ViTImageProcessor): images are rescaled to [0, 1] (prism's datasets
// already are), then normalised per channel, x ↦ (x − ImageMean[c])/ImageStd[c],
// when DoNormalize.
type Preprocessor struct {
	DoNormalize bool      `json:"do_normalize"`
	ImageMean   []float64 `json:"image_mean"`
	ImageStd    []float64 `json:"image_std"`
	DoRescale   bool      `json:"do_rescale"`
	// RescaleFactor is 1/255 for 8-bit images.
	RescaleFactor float64 `json:"rescale_factor"`
}

// ReadPreprocessor reads a preprocessor_config.json with ViTImageProcessor's
// defaults for missing fields (normalise with mean and std 0.5, rescale by
// 1/255), checked against the number of channels.
func ReadPreprocessor(path string, channels int) (Preprocessor, error) {
	p := Preprocessor{DoNormalize: true, ImageMean: []float64{0.5, 0.5, 0.5}, ImageStd: []float64{0.5, 0.5, 0.5},
		DoRescale: true, RescaleFactor: 1.0 / 255}
	data, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	if p.DoNormalize {
		if len(p.ImageMean) != channels || len(p.ImageStd) != channels {
			return p, fmt.Errorf("%s: image_mean %v and image_std %v: want %d values each (num_channels)", path, p.ImageMean, p.ImageStd, channels)
		}
		for _, s := range p.ImageStd {
			if !(s > 0) {
				return p, fmt.Errorf("%s: image_std %v: want values > 0", path, p.ImageStd)
			}
		}
	}
	return p, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
