package peft

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

// Layer is one trained adapter, with what converting it to a plain LoRA
// needs. The layer computes y = x·W₁ᵀ + b with
//
//	W₁ = Wres + Scale·B·A,   W₀ = Wres + Scale·InitB·InitA   (low-rank methods)
//	W₁ = diag(Magnitude ⊘ ‖W′‖_row)·W′,  W′ = W₀ + Scale·B·A  (DoRA; InitB = 0)
//
// B: m×r, A: r×n (trained); InitB, InitA their values at initialisation;
// W₀ the layer's pretrained weight (m×n).
type Layer struct {
	Name   string  `json:"name"`
	Method string  `json:"method"`
	Rank   int     `json:"rank"`
	Alpha  float64 `json:"alpha"`
	RSLoRA bool    `json:"rslora,omitempty"`
	Scale  float64 `json:"scale"`
	// Start is the window's first singular component (window methods).
	Start int `json:"start"`

	A, B         lowrank.Matrix[float64] `json:"-"`
	InitA, InitB lowrank.Matrix[float64] `json:"-"`
	Magnitude    []float64               `json:"-"`
}

// Out and In are the layer's m and n.
func (l Layer) Out() int { return l.B.Rows }
func (l Layer) In() int  { return l.A.Cols }

// check reports inconsistent shapes.
func (l Layer) check() error {
	m, n, r := l.B.Rows, l.A.Cols, l.Rank
	bad := func(what string, got lowrank.Matrix[float64], rows, cols int) error {
		if got.Rows != rows || got.Cols != cols || len(got.Data) != rows*cols {
			return fmt.Errorf("peft: layer %q: %s is %d×%d, expected %d×%d (rank %d)", l.Name, what, got.Rows, got.Cols, rows, cols, r)
		}
		return nil
	}
	for _, err := range []error{bad("lora_A", l.A, r, n), bad("lora_B", l.B, m, r), bad("initial lora_A", l.InitA, r, n),
		bad("initial lora_B", l.InitB, m, r)} {
		if err != nil {
			return err
		}
	}
	if r < 1 || !(l.Scale > 0) || math.IsInf(l.Scale, 0) {
		return fmt.Errorf("peft: layer %q: rank %d, scale %v: want ≥ 1 and > 0", l.Name, r, l.Scale)
	}
	if (l.Method == adapter.MethodDoRA) != (l.Magnitude != nil) {
		return fmt.Errorf("peft: layer %q: method %s with %d magnitudes", l.Name, l.Method, len(l.Magnitude))
	}
	if l.Magnitude != nil && len(l.Magnitude) != m {
		return fmt.Errorf("peft: layer %q: %d magnitudes for %d output rows", l.Name, len(l.Magnitude), m)
	}
	return nil
}

// SavedModule is a layer trained in full (a new classification head): PEFT's
// modules_to_save. Weight is out×in, Bias out (nil: none).
type SavedModule struct {
	Name   string
	Weight lowrank.Matrix[float64]
	Bias   []float64
}

// Trained is a fine-tuning run's adapters: what `prism finetune --run-dir`
// stores in adapters.safetensors and `prism export peft` reads.
type Trained struct {
	Layers []Layer
	Saved  []SavedModule
	// Metadata records the run's provenance (string → string), e.g.
	// MetaNetwork, MetaBaseModel.
	Metadata map[string]string
}

// Metadata keys of Trained written by core/train.
const (
	// MetaNetwork is the network's kind and configuration (JSON
	// {"kind", "config", "input_shape"}).
	MetaNetwork = "network"
	// MetaBaseModel is the prism model directory the run started from,
	// when it was imported (`prism import hf-vit`).
	MetaBaseModel = "base_model_dir"
	// MetaPretrainedKey is the pretrained cache key of the base model.
	MetaPretrainedKey = "pretrained_key"
)

// TrainedFormat is the "format" metadata of a trained-adapters file.
const TrainedFormat = "prism.adapters/1"

// variableValues reads a float32 or float64 variable of ctx.In(layer).
func variableValues(ctx *mlctx.Context, layer, name string) ([]float64, []int, error) {
	scope := ctx.In(layer)
	v := scope.GetVariableByScopeAndName(scope.Scope(), name)
	if v == nil {
		return nil, nil, fmt.Errorf("peft: layer %q has no variable %s/%s", layer, scope.Scope(), name)
	}
	t, err := v.Value()
	if err != nil {
		return nil, nil, err
	}
	switch t.DType() {
	case dtypes.Float32:
		flat := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(flat))
		for i, x := range flat {
			out[i] = float64(x)
		}
		return out, t.Shape().Dimensions, nil
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](t), t.Shape().Dimensions, nil
	}
	return nil, nil, fmt.Errorf("peft: variable %s has dtype %s, want Float32 or Float64", v.ScopeAndName(), t.DType())
}

func variableMatrix(ctx *mlctx.Context, layer, name string) (lowrank.Matrix[float64], error) {
	data, dims, err := variableValues(ctx, layer, name)
	if err != nil {
		return lowrank.Matrix[float64]{}, err
	}
	if len(dims) != 2 {
		return lowrank.Matrix[float64]{}, fmt.Errorf("peft: layer %q: %s has shape %v, want a matrix", layer, name, dims)
	}
	return lowrank.MatrixFrom(dims[0], dims[1], data)
}

// FromAdapted reads the trained adapters of a (the layers Attach adapted in
// ctx, the model's root scope): every adapter method's layer with its
// current lora_A, lora_B (and DoRA's magnitude) and its initial factors.
// Layers of full fine-tuning and head-only training have no adapter and are
// left out.
func FromAdapted(ctx *mlctx.Context, a *adapter.Adapted) ([]Layer, error) {
	var out []Layer
	for _, st := range a.Layers() {
		if !st.Config.IsAdapter() {
			continue
		}
		l := Layer{Name: st.Name, Method: st.Config.Method, Rank: st.Config.Rank, Alpha: st.Config.Alpha,
			RSLoRA: st.Config.RSLoRA, Scale: st.Scale, Start: st.Start, InitA: st.InitA, InitB: st.InitB}
		if l.Alpha == 0 {
			l.Alpha = float64(l.Rank)
		}
		var err error
		if l.A, err = variableMatrix(ctx, st.Name, adapter.LoRAAName); err != nil {
			return nil, err
		}
		if l.B, err = variableMatrix(ctx, st.Name, adapter.LoRABName); err != nil {
			return nil, err
		}
		if st.Config.Method == adapter.MethodDoRA {
			if l.Magnitude, _, err = variableValues(ctx, st.Name, adapter.MagnitudeName); err != nil {
				return nil, err
			}
		}
		if err := l.check(); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// SavedFrom reads a fully trained layer (its "weight" and, when present,
// "bias") from ctx, the model's root scope.
func SavedFrom(ctx *mlctx.Context, layer string) (SavedModule, error) {
	w, err := variableMatrix(ctx, layer, adapter.WeightName)
	if err != nil {
		return SavedModule{}, err
	}
	s := SavedModule{Name: layer, Weight: w}
	scope := ctx.In(layer)
	if scope.GetVariableByScopeAndName(scope.Scope(), adapter.BiasName) != nil {
		if s.Bias, _, err = variableValues(ctx, layer, adapter.BiasName); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Tensor names inside a trained-adapters file.
const (
	suffixA     = ".lora_A"
	suffixB     = ".lora_B"
	suffixInitA = ".lora_A.init"
	suffixInitB = ".lora_B.init"
	suffixMag   = ".lora_magnitude"
)

// WriteTrained stores t in one safetensors file (F64): NAME.lora_A,
// NAME.lora_B, NAME.lora_A.init, NAME.lora_B.init (and NAME.lora_magnitude)
// per adapted layer, NAME.weight and NAME.bias per saved module; the
// metadata holds "format" (TrainedFormat), "layers" (JSON: name, method,
// rank, alpha, rslora, scale, start of each layer), "saved" (JSON names) and
// t.Metadata.
func WriteTrained(path string, t Trained) error {
	var ts []safetensors.Tensor
	for _, l := range t.Layers {
		if err := l.check(); err != nil {
			return err
		}
		ts = append(ts, safetensors.FromMatrix(l.Name+suffixA, l.A), safetensors.FromMatrix(l.Name+suffixB, l.B),
			safetensors.FromMatrix(l.Name+suffixInitA, l.InitA), safetensors.FromMatrix(l.Name+suffixInitB, l.InitB))
		if l.Magnitude != nil {
			ts = append(ts, safetensors.FromFloats(l.Name+suffixMag, []int{len(l.Magnitude)}, l.Magnitude))
		}
	}
	var saved []string
	for _, s := range t.Saved {
		saved = append(saved, s.Name)
		ts = append(ts, safetensors.FromMatrix(s.Name+".weight", s.Weight))
		if s.Bias != nil {
			ts = append(ts, safetensors.FromFloats(s.Name+".bias", []int{len(s.Bias)}, s.Bias))
		}
	}
	layers, err := json.Marshal(t.Layers)
	if err != nil {
		return err
	}
	names, err := json.Marshal(saved)
	if err != nil {
		return err
	}
	meta := map[string]string{}
	for k, v := range t.Metadata {
		meta[k] = v
	}
	meta["format"], meta["layers"], meta["saved"] = TrainedFormat, string(layers), string(names)
	return safetensors.WriteFile(path, ts, meta)
}

// ReadTrained reads a file written by WriteTrained.
func ReadTrained(path string) (Trained, error) {
	var t Trained
	r, err := safetensors.Open(path)
	if err != nil {
		return t, err
	}
	defer r.Close()
	meta := r.Metadata()
	if meta["format"] != TrainedFormat {
		return t, fmt.Errorf("peft: %s: format %q, want %q (a trained-adapters file of `prism finetune --run-dir`)", path, meta["format"], TrainedFormat)
	}
	if err := json.Unmarshal([]byte(meta["layers"]), &t.Layers); err != nil {
		return t, fmt.Errorf("peft: %s: metadata \"layers\": %w", path, err)
	}
	var saved []string
	if s := meta["saved"]; s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &saved); err != nil {
			return t, fmt.Errorf("peft: %s: metadata \"saved\": %w", path, err)
		}
	}
	matrix := func(name string) (lowrank.Matrix[float64], error) { return safetensors.ReadMatrix[float64](r, name) }
	for i := range t.Layers {
		l := &t.Layers[i]
		for _, f := range []struct {
			dst    *lowrank.Matrix[float64]
			suffix string
		}{{&l.A, suffixA}, {&l.B, suffixB}, {&l.InitA, suffixInitA}, {&l.InitB, suffixInitB}} {
			if *f.dst, err = matrix(l.Name + f.suffix); err != nil {
				return t, err
			}
		}
		if l.Method == adapter.MethodDoRA {
			if l.Magnitude, err = r.Float64s(l.Name + suffixMag); err != nil {
				return t, err
			}
		}
		if err := l.check(); err != nil {
			return t, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, name := range saved {
		s := SavedModule{Name: name}
		if s.Weight, err = matrix(name + ".weight"); err != nil {
			return t, err
		}
		if _, err := r.Info(name + ".bias"); err == nil {
			if s.Bias, err = r.Float64s(name + ".bias"); err != nil {
				return t, err
			}
		}
		t.Saved = append(t.Saved, s)
	}
	t.Metadata = map[string]string{}
	for k, v := range meta {
		switch k {
		case "format", "layers", "saved":
		default:
			t.Metadata[k] = v
		}
	}
	return t, nil
}

// isZero reports whether every entry of m is 0.
func isZero(m lowrank.Matrix[float64]) bool {
	for _, x := range m.Data {
		if x != 0 {
			return false
		}
	}
	return true
}
