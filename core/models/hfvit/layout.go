package hfvit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prism-lora/prism/core/adapter/peft"
	"github.com/prism-lora/prism/core/models"
)

// Float is the element type of tensors: float32 or float64.
type Float interface{ float32 | float64 }

// Tensor is a named dense tensor, row-major.
type Tensor[T Float] struct {
	Name  string
	Shape []int
	Data  []T
}

// Spec is a tensor's name and shape.
type Spec struct {
	Name  string
	Shape []int
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Prefix of the backbone's tensors in a ViTForImageClassification checkpoint
// (its ViTModel is the attribute "vit"); a bare ViTModel has none.
const Prefix = "vit."

// Layout is how a checkpoint lays out its tensors: the backbone's prefix
// ("vit." or ""), whether q, k and v have biases, and the rows of the
// classifier (0: no classifier).
type Layout struct {
	Prefix  string
	QKVBias bool
	Classes int
}

// LayerNames maps prism's linear layers to the HuggingFace modules that
// compute them (a prism layer maps to several modules when it fuses them:
// blocks.i.attn.qkv is query, key and value, in that order, each a third of
// its output rows). The patch embedding is a Conv2d in HuggingFace's model.
func LayerNames(v models.ViTConfig, prefix string) map[string][]string {
	names := map[string][]string{
		"patch_embed.proj": {prefix + "embeddings.patch_embeddings.projection"},
		models.DefaultHead: {"classifier"},
	}
	for i := range v.Depth {
		p, h := fmt.Sprintf("blocks.%d.", i), fmt.Sprintf("%sencoder.layer.%d.", prefix, i)
		names[p+"attn.qkv"] = []string{h + "attention.attention.query", h + "attention.attention.key", h + "attention.attention.value"}
		names[p+"attn.proj"] = []string{h + "attention.output.dense"}
		names[p+"mlp.fc1"] = []string{h + "intermediate.dense"}
		names[p+"mlp.fc2"] = []string{h + "output.dense"}
	}
	return names
}

// HFSpecs lists the tensors of a HuggingFace checkpoint of the ViT v in this
// layout, with their shapes, in the model's order.
func (l Layout) HFSpecs(v models.ViTConfig) []Spec {
	d, m, p := v.Width, v.MLPDim, v.PatchShape()
	pre := l.Prefix
	specs := []Spec{
		{pre + "embeddings.cls_token", []int{1, 1, d}},
		{pre + "embeddings.position_embeddings", []int{1, v.NumPatches() + 1, d}},
		{pre + "embeddings.patch_embeddings.projection.weight", []int{d, v.Channels, p[0], p[1]}},
		{pre + "embeddings.patch_embeddings.projection.bias", []int{d}},
	}
	linear := func(name string, out, in int, bias bool) {
		specs = append(specs, Spec{name + ".weight", []int{out, in}})
		if bias {
			specs = append(specs, Spec{name + ".bias", []int{out}})
		}
	}
	norm := func(name string) {
		specs = append(specs, Spec{name + ".weight", []int{d}}, Spec{name + ".bias", []int{d}})
	}
	for i := range v.Depth {
		h := fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		norm(h + "layernorm_before")
		for _, qkv := range []string{"query", "key", "value"} {
			linear(h+"attention.attention."+qkv, d, d, l.QKVBias)
		}
		linear(h+"attention.output.dense", d, d, true)
		norm(h + "layernorm_after")
		linear(h+"intermediate.dense", m, d, true)
		linear(h+"output.dense", d, m, true)
	}
	norm(pre + "layernorm")
	if l.Classes > 0 {
		linear("classifier", l.Classes, d, true)
	}
	return specs
}

// PrismSpecs lists prism's tensors of the ViT v (the variables of
// models.ViT, named as core/train's model files name them: the layer's
// scope, a dot, the variable), in the model's order; the head only when
// v.Classes > 0.
func PrismSpecs(v models.ViTConfig) []Spec {
	d, m := v.Width, v.MLPDim
	specs := []Spec{
		{"cls_token", []int{1, 1, d}},
		{"pos_embed", []int{1, v.NumPatches() + 1, d}},
		{"patch_embed.proj.weight", []int{d, v.PatchDim()}},
		{"patch_embed.proj.bias", []int{d}},
	}
	linear := func(name string, out, in int) {
		specs = append(specs, Spec{name + ".weight", []int{out, in}}, Spec{name + ".bias", []int{out}})
	}
	norm := func(name string) {
		specs = append(specs, Spec{name + ".weight", []int{d}}, Spec{name + ".bias", []int{d}})
	}
	for i := range v.Depth {
		p := fmt.Sprintf("blocks.%d.", i)
		norm(p + "norm1")
		linear(p+"attn.qkv", 3*d, d)
		linear(p+"attn.proj", d, d)
		norm(p + "norm2")
		linear(p+"mlp.fc1", m, d)
		linear(p+"mlp.fc2", d, m)
	}
	norm("norm")
	if v.Classes > 0 {
		linear(models.DefaultHead, v.Classes, d)
	}
	return specs
}

// ConvToPatch permutes a convolution kernel [d, C, ph, pw] (PyTorch's
// Conv2d weight) to prism's patch-embedding weight [d, ph·pw·C], whose
// column (i·pw + j)·C + c multiplies pixel (i, j) of channel c of a patch
// (models.ViTConfig.Patchify's order), so both compute the same sums.
func ConvToPatch[T Float](kernel []T, d, channels, ph, pw int) []T {
	out := make([]T, len(kernel))
	for o := range d {
		for c := range channels {
			for i := range ph {
				for j := range pw {
					out[o*ph*pw*channels+(i*pw+j)*channels+c] = kernel[((o*channels+c)*ph+i)*pw+j]
				}
			}
		}
	}
	return out
}

// PatchToConv is the inverse of ConvToPatch.
func PatchToConv[T Float](weight []T, d, channels, ph, pw int) []T {
	out := make([]T, len(weight))
	for o := range d {
		for c := range channels {
			for i := range ph {
				for j := range pw {
					out[((o*channels+c)*ph+i)*pw+j] = weight[o*ph*pw*channels+(i*pw+j)*channels+c]
				}
			}
		}
	}
	return out
}

// FromHF converts the tensors of a HuggingFace ViT checkpoint (layout l,
// shapes as l.HFSpecs(v)) to prism's (PrismSpecs(v) with v.Classes =
// l.Classes): q, k and v rows are stacked into blocks.i.attn.qkv (zero
// biases when the checkpoint has none), the convolution kernel is permuted
// to the patch weight, everything else is renamed. get returns a tensor's
// values by HuggingFace name.
func FromHF[T Float](v models.ViTConfig, l Layout, get func(name string) ([]T, error)) ([]Tensor[T], error) {
	v.Classes = l.Classes
	d, p := v.Width, v.PatchShape()
	pre := l.Prefix
	var out []Tensor[T]
	var err error
	fetch := func(name string) []T {
		if err != nil {
			return nil
		}
		var x []T
		x, err = get(name)
		return x
	}
	rename := func(prism, hf string, shape []int) {
		out = append(out, Tensor[T]{prism, shape, fetch(hf)})
	}
	linear := func(prism, hf string, outDim, in int) {
		rename(prism+".weight", hf+".weight", []int{outDim, in})
		rename(prism+".bias", hf+".bias", []int{outDim})
	}
	norm := func(prism, hf string) {
		rename(prism+".weight", hf+".weight", []int{d})
		rename(prism+".bias", hf+".bias", []int{d})
	}
	rename("cls_token", pre+"embeddings.cls_token", []int{1, 1, d})
	rename("pos_embed", pre+"embeddings.position_embeddings", []int{1, v.NumPatches() + 1, d})
	if kernel := fetch(pre + "embeddings.patch_embeddings.projection.weight"); err == nil {
		out = append(out, Tensor[T]{"patch_embed.proj.weight", []int{d, v.PatchDim()}, ConvToPatch(kernel, d, v.Channels, p[0], p[1])})
	}
	rename("patch_embed.proj.bias", pre+"embeddings.patch_embeddings.projection.bias", []int{d})
	for i := range v.Depth {
		b, h := fmt.Sprintf("blocks.%d.", i), fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		norm(b+"norm1", h+"layernorm_before")
		w := make([]T, 0, 3*d*d)
		bias := make([]T, 3*d)
		for k, part := range []string{"query", "key", "value"} {
			w = append(w, fetch(h+"attention.attention."+part+".weight")...)
			if l.QKVBias {
				copy(bias[k*d:(k+1)*d], fetch(h+"attention.attention."+part+".bias"))
			}
		}
		out = append(out, Tensor[T]{b + "attn.qkv.weight", []int{3 * d, d}, w}, Tensor[T]{b + "attn.qkv.bias", []int{3 * d}, bias})
		linear(b+"attn.proj", h+"attention.output.dense", d, d)
		norm(b+"norm2", h+"layernorm_after")
		linear(b+"mlp.fc1", h+"intermediate.dense", v.MLPDim, d)
		linear(b+"mlp.fc2", h+"output.dense", d, v.MLPDim)
	}
	norm("norm", pre+"layernorm")
	if l.Classes > 0 {
		linear(models.DefaultHead, "classifier", l.Classes, d)
	}
	if err != nil {
		return nil, err
	}
	for i := range out {
		if len(out[i].Data) != size(out[i].Shape) {
			return nil, fmt.Errorf("hfvit: tensor for %s has %d values, want %d (shape %v)", out[i].Name, len(out[i].Data), size(out[i].Shape), out[i].Shape)
		}
	}
	return out, nil
}

// ToHF converts prism's tensors of the ViT v (PrismSpecs(v), by name) to a
// ViTForImageClassification checkpoint's (Layout{Prefix, QKVBias: true,
// Classes: v.Classes}.HFSpecs(v)): the inverse of FromHF. Missing tensors
// and wrong shapes are errors naming the tensor and the expected shape.
func ToHF[T Float](v models.ViTConfig, params []Tensor[T]) ([]Tensor[T], error) {
	byName := map[string]Tensor[T]{}
	for _, t := range params {
		byName[t.Name] = t
	}
	var problems []string
	for _, s := range PrismSpecs(v) {
		t, ok := byName[s.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing tensor %q (expected shape %v)", s.Name, s.Shape))
		case !slices.Equal(t.Shape, s.Shape) || len(t.Data) != size(s.Shape):
			problems = append(problems, fmt.Sprintf("tensor %q has shape %v (%d values), expected %v", s.Name, t.Shape, len(t.Data), s.Shape))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("hfvit: prism ViT tensors: %s", joinProblems(problems))
	}
	d, p := v.Width, v.PatchShape()
	pre := Prefix
	var out []Tensor[T]
	rename := func(hf, prism string, shape []int) {
		out = append(out, Tensor[T]{hf, shape, byName[prism].Data})
	}
	linear := func(hf, prism string) {
		rename(hf+".weight", prism+".weight", byName[prism+".weight"].Shape)
		rename(hf+".bias", prism+".bias", byName[prism+".bias"].Shape)
	}
	rename(pre+"embeddings.cls_token", "cls_token", []int{1, 1, d})
	rename(pre+"embeddings.position_embeddings", "pos_embed", []int{1, v.NumPatches() + 1, d})
	out = append(out, Tensor[T]{pre + "embeddings.patch_embeddings.projection.weight", []int{d, v.Channels, p[0], p[1]},
		PatchToConv(byName["patch_embed.proj.weight"].Data, d, v.Channels, p[0], p[1])})
	rename(pre+"embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias", []int{d})
	for i := range v.Depth {
		b, h := fmt.Sprintf("blocks.%d.", i), fmt.Sprintf("%sencoder.layer.%d.", pre, i)
		linear(h+"layernorm_before", b+"norm1")
		w, bias := byName[b+"attn.qkv.weight"].Data, byName[b+"attn.qkv.bias"].Data
		for k, part := range []string{"query", "key", "value"} {
			name := h + "attention.attention." + part
			out = append(out, Tensor[T]{name + ".weight", []int{d, d}, w[k*d*d : (k+1)*d*d]},
				Tensor[T]{name + ".bias", []int{d}, bias[k*d : (k+1)*d]})
		}
		linear(h+"attention.output.dense", b+"attn.proj")
		linear(h+"layernorm_after", b+"norm2")
		linear(h+"intermediate.dense", b+"mlp.fc1")
		linear(h+"output.dense", b+"mlp.fc2")
	}
	linear(pre+"layernorm", "norm")
	if v.Classes > 0 {
		linear("classifier", models.DefaultHead)
	}
	return out, nil
}

// joinProblems lists up to 20 problems, one per line, and counts the rest.
func joinProblems(problems []string) string {
	const most = 20
	s := problems
	if len(s) > most {
		s = s[:most]
	}
	msg := "\n  " + strings.Join(s, "\n  ")
	if len(problems) > most {
		msg += fmt.Sprintf("\n  … and %d more", len(problems)-most)
	}
	return msg
}

// PEFTNaming maps prism's layers of the ViT v to the modules of a
// transformers ViTForImageClassification (backbone prefix, e.g. Prefix),
// for core/adapter/peft's Export: blocks.i.attn.qkv to query, key and value
// (a third of its output rows each), the patch embedding to the Conv2d
// projection, the heads ("head" and a new task's head, e.g. "head_taskB")
// to the classifier.
func PEFTNaming(v models.ViTConfig, prefix string) peft.Naming {
	names := LayerNames(v, prefix)
	p := v.PatchShape()
	return func(layer string, out, in int) ([]peft.Target, error) {
		if strings.HasPrefix(layer, models.DefaultHead) {
			return []peft.Target{{Module: "classifier", Rows: [2]int{0, out}}}, nil
		}
		modules, ok := names[layer]
		if !ok {
			return nil, fmt.Errorf("hfvit: layer %q is not a layer of this ViT", layer)
		}
		if layer == "patch_embed.proj" {
			if in != v.PatchDim() || out != v.Width {
				return nil, fmt.Errorf("hfvit: layer %q is %d×%d, the ViT's patch embedding %d×%d", layer, out, in, v.Width, v.PatchDim())
			}
			return []peft.Target{{Module: modules[0], Rows: [2]int{0, out}, Conv: &peft.Conv{Channels: v.Channels, KH: p[0], KW: p[1]}}}, nil
		}
		rows := out / len(modules)
		if rows*len(modules) != out {
			return nil, fmt.Errorf("hfvit: layer %q has %d output rows, not %d equal parts", layer, out, len(modules))
		}
		targets := make([]peft.Target, len(modules))
		for i, m := range modules {
			targets[i] = peft.Target{Module: m, Rows: [2]int{i * rows, (i + 1) * rows}}
		}
		return targets, nil
	}
}
