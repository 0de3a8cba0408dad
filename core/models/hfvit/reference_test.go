package hfvit_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/prism-lora/prism/core/safetensors"
)

// This file is an independent model of HuggingFace's ViTForImageClassification
// (transformers' modeling_vit.py, evaluation mode), written from its
// semantics with plain loops over the checkpoint's own tensors — it shares
// no code with prism's model or with the package under test.

// hfSpec is the architecture of a test checkpoint, as config.json gives it.
type hfSpec struct {
	hidden, layers, heads, inter int
	act                          string
	eps                          float64
	imgH, imgW, patchH, patchW   int
	channels, labels             int // labels 0: no classifier
	qkvBias                      bool
	prefix                       string // "vit." or "" (a bare ViTModel)
	pooler                       bool   // a ViTModel's pooler (unused by classification)
}

// configJSON writes config.json as transformers would, by hand.
func (s hfSpec) configJSON() map[string]any {
	c := map[string]any{
		"architectures": []string{"ViTForImageClassification"}, "model_type": "vit",
		"hidden_size": s.hidden, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
		"intermediate_size": s.inter, "hidden_act": s.act, "hidden_dropout_prob": 0.1,
		"attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": s.eps,
		"num_channels": s.channels, "qkv_bias": s.qkvBias, "encoder_stride": s.patchH,
		"torch_dtype": "float32", "transformers_version": "4.46.0",
	}
	if s.imgH == s.imgW {
		c["image_size"] = s.imgH
	} else {
		c["image_size"] = []int{s.imgH, s.imgW}
	}
	if s.patchH == s.patchW {
		c["patch_size"] = s.patchH
	} else {
		c["patch_size"] = []int{s.patchH, s.patchW}
	}
	if s.labels > 0 {
		id2label, label2id := map[string]string{}, map[string]int{}
		for i := range s.labels {
			id2label[fmt.Sprint(i)] = fmt.Sprintf("class %d", i)
			label2id[fmt.Sprintf("class %d", i)] = i
		}
		c["id2label"], c["label2id"] = id2label, label2id
	}
	return c
}

// hfTensor is a tensor of a test checkpoint.
type hfTensor struct {
	shape []int
	data  []float64
}

// randomCheckpoint draws every tensor of the checkpoint, named and shaped
// as transformers' modules name and shape them.
func randomCheckpoint(s hfSpec, rng *rand.Rand) map[string]hfTensor {
	t := map[string]hfTensor{}
	add := func(name string, scale, offset float64, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float64, n)
		for i := range data {
			data[i] = offset + scale*rng.NormFloat64()
		}
		t[name] = hfTensor{shape, data}
	}
	d, p := s.hidden, s.prefix
	nPatches := (s.imgH / s.patchH) * (s.imgW / s.patchW)
	add(p+"embeddings.cls_token", 0.5, 0, 1, 1, d)
	add(p+"embeddings.position_embeddings", 0.5, 0, 1, nPatches+1, d)
	add(p+"embeddings.patch_embeddings.projection.weight", 0.4, 0, d, s.channels, s.patchH, s.patchW)
	add(p+"embeddings.patch_embeddings.projection.bias", 0.1, 0, d)
	for i := range s.layers {
		l := fmt.Sprintf("%sencoder.layer.%d.", p, i)
		add(l+"layernorm_before.weight", 0.2, 1, d)
		add(l+"layernorm_before.bias", 0.1, 0, d)
		for _, m := range []string{"query", "key", "value"} {
			add(l+"attention.attention."+m+".weight", 0.5/math.Sqrt(float64(d)), 0, d, d)
			if s.qkvBias {
				add(l+"attention.attention."+m+".bias", 0.1, 0, d)
			}
		}
		add(l+"attention.output.dense.weight", 1/math.Sqrt(float64(d)), 0, d, d)
		add(l+"attention.output.dense.bias", 0.1, 0, d)
		add(l+"layernorm_after.weight", 0.2, 1, d)
		add(l+"layernorm_after.bias", 0.1, 0, d)
		add(l+"intermediate.dense.weight", 1/math.Sqrt(float64(d)), 0, s.inter, d)
		add(l+"intermediate.dense.bias", 0.1, 0, s.inter)
		add(l+"output.dense.weight", 1/math.Sqrt(float64(s.inter)), 0, d, s.inter)
		add(l+"output.dense.bias", 0.1, 0, d)
	}
	add(p+"layernorm.weight", 0.2, 1, d)
	add(p+"layernorm.bias", 0.1, 0, d)
	if s.pooler {
		add(p+"pooler.dense.weight", 0.1, 0, d, d)
		add(p+"pooler.dense.bias", 0.1, 0, d)
	}
	if s.labels > 0 {
		add("classifier.weight", 1/math.Sqrt(float64(d)), 0, s.labels, d)
		add("classifier.bias", 0.1, 0, s.labels)
	}
	return t
}

// writeCheckpoint writes config.json and model.safetensors (F32 or F64).
func writeCheckpoint(t *testing.T, dir string, s hfSpec, ck map[string]hfTensor, dtype safetensors.DType) {
	t.Helper()
	var ts []safetensors.Tensor
	for name, x := range ck {
		if dtype == safetensors.F64 {
			ts = append(ts, safetensors.FromFloats(name, x.shape, x.data))
		} else {
			f := make([]float32, len(x.data))
			for i, v := range x.data {
				f[i] = float32(v)
			}
			ts = append(ts, safetensors.FromFloats(name, x.shape, f))
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, s.configJSON())
}

func writeConfig(t *testing.T, dir string, c map[string]any) {
	t.Helper()
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// roundF32 rounds every value to float32 (what an F32 file stores).
func roundF32(ck map[string]hfTensor) map[string]hfTensor {
	out := map[string]hfTensor{}
	for k, v := range ck {
		d := make([]float64, len(v.data))
		for i, x := range v.data {
			d[i] = float64(float32(x))
		}
		out[k] = hfTensor{v.shape, d}
	}
	return out
}

// activation is transformers' ACT2FN[name] in float64.
func activation(name string, x float64) float64 {
	switch name {
	case "gelu":
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case "gelu_new", "gelu_pytorch_tanh":
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	case "quick_gelu":
		return x / (1 + math.Exp(-1.702*x))
	case "relu":
		return math.Max(x, 0)
	case "silu":
		return x / (1 + math.Exp(-x))
	}
	panic("activation " + name)
}

// referenceForward returns, for pixel_values [B][C][H][W], the final
// LayerNorm'd [CLS] token of every image ([B][d]) and, with a classifier,
// the logits ([B][labels]).
func referenceForward(s hfSpec, ck map[string]hfTensor, pixels [][][][]float64) (features, logits [][]float64) {
	w := func(name string) []float64 {
		x, ok := ck[name]
		if !ok {
			panic("reference: no tensor " + name)
		}
		return x.data
	}
	d, p := s.hidden, s.prefix
	gh, gw := s.imgH/s.patchH, s.imgW/s.patchW
	tokens := gh*gw + 1
	// linear: y = x·Wᵀ + b, W [out][in] row-major.
	linear := func(x []float64, weight, bias []float64, out int) []float64 {
		in := len(x)
		y := make([]float64, out)
		for o := range out {
			sum := 0.0
			if bias != nil {
				sum = bias[o]
			}
			for i := range in {
				sum += weight[o*in+i] * x[i]
			}
			y[o] = sum
		}
		return y
	}
	layerNorm := func(x, gamma, beta []float64) []float64 {
		mean, variance := 0.0, 0.0
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			variance += (v - mean) * (v - mean)
		}
		variance /= float64(len(x))
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = (v-mean)/math.Sqrt(variance+s.eps)*gamma[i] + beta[i]
		}
		return y
	}
	for _, img := range pixels {
		// Patch embedding: Conv2d(C, d, kernel = stride = patch), then
		// flatten(2).transpose(1, 2): tokens row-major over the grid.
		h := make([][]float64, tokens)
		h[0] = append([]float64(nil), w(p+"embeddings.cls_token")...)
		kernel, kb := w(p+"embeddings.patch_embeddings.projection.weight"), w(p+"embeddings.patch_embeddings.projection.bias")
		for gy := range gh {
			for gx := range gw {
				e := make([]float64, d)
				for o := range d {
					sum := kb[o]
					for c := range s.channels {
						for i := range s.patchH {
							for j := range s.patchW {
								sum += kernel[((o*s.channels+c)*s.patchH+i)*s.patchW+j] * img[c][gy*s.patchH+i][gx*s.patchW+j]
							}
						}
					}
					e[o] = sum
				}
				h[1+gy*gw+gx] = e
			}
		}
		pos := w(p + "embeddings.position_embeddings")
		for t := range tokens {
			for o := range d {
				h[t][o] += pos[t*d+o]
			}
		}
		hd := d / s.heads
		for l := range s.layers {
			L := fmt.Sprintf("%sencoder.layer.%d.", p, l)
			bias := func(name string) []float64 {
				if !s.qkvBias {
					return nil
				}
				return w(name)
			}
			q, k, v := make([][]float64, tokens), make([][]float64, tokens), make([][]float64, tokens)
			for t := range tokens {
				x := layerNorm(h[t], w(L+"layernorm_before.weight"), w(L+"layernorm_before.bias"))
				q[t] = linear(x, w(L+"attention.attention.query.weight"), bias(L+"attention.attention.query.bias"), d)
				k[t] = linear(x, w(L+"attention.attention.key.weight"), bias(L+"attention.attention.key.bias"), d)
				v[t] = linear(x, w(L+"attention.attention.value.weight"), bias(L+"attention.attention.value.bias"), d)
			}
			next := make([][]float64, tokens)
			for t := range tokens {
				context := make([]float64, d)
				for head := range s.heads {
					scores := make([]float64, tokens)
					most := math.Inf(-1)
					for u := range tokens {
						dot := 0.0
						for j := head * hd; j < (head+1)*hd; j++ {
							dot += q[t][j] * k[u][j]
						}
						scores[u] = dot * math.Pow(float64(hd), -0.5)
						most = math.Max(most, scores[u])
					}
					total := 0.0
					for u := range scores {
						scores[u] = math.Exp(scores[u] - most)
						total += scores[u]
					}
					for u := range tokens {
						for j := head * hd; j < (head+1)*hd; j++ {
							context[j] += scores[u] / total * v[u][j]
						}
					}
				}
				out := linear(context, w(L+"attention.output.dense.weight"), w(L+"attention.output.dense.bias"), d)
				for o := range d {
					out[o] += h[t][o] // first residual (attention)
				}
				x := layerNorm(out, w(L+"layernorm_after.weight"), w(L+"layernorm_after.bias"))
				inter := linear(x, w(L+"intermediate.dense.weight"), w(L+"intermediate.dense.bias"), s.inter)
				for i := range inter {
					inter[i] = activation(s.act, inter[i])
				}
				y := linear(inter, w(L+"output.dense.weight"), w(L+"output.dense.bias"), d)
				for o := range d {
					y[o] += out[o] // second residual
				}
				next[t] = y
			}
			h = next
		}
		cls := layerNorm(h[0], w(p+"layernorm.weight"), w(p+"layernorm.bias"))
		features = append(features, cls)
		if s.labels > 0 {
			logits = append(logits, linear(cls, w("classifier.weight"), w("classifier.bias"), s.labels))
		}
	}
	return features, logits
}

// randomPixels draws pixel_values [B][C][H][W] in [0, 1).
func randomPixels(s hfSpec, batch int, rng *rand.Rand) [][][][]float64 {
	px := make([][][][]float64, batch)
	for b := range px {
		px[b] = make([][][]float64, s.channels)
		for c := range px[b] {
			px[b][c] = make([][]float64, s.imgH)
			for y := range px[b][c] {
				px[b][c][y] = make([]float64, s.imgW)
				for x := range px[b][c][y] {
					px[b][c][y][x] = rng.Float64()
				}
			}
		}
	}
	return px
}

// nhwc lays pixel_values [B][C][H][W] out as prism's images [B, H, W, C].
func nhwc(px [][][][]float64) []float64 {
	var out []float64
	for _, img := range px {
		for y := range img[0] {
			for x := range img[0][y] {
				for c := range img {
					out = append(out, img[c][y][x])
				}
			}
		}
	}
	return out
}
