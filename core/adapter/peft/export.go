package peft

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

// Files of a PEFT adapter directory.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// KeyPrefix starts every tensor name of a saved PEFT model (the PeftModel's
// base_model, a LoraModel, wraps the user's model as .model).
const KeyPrefix = "base_model.model."

// Config is PEFT's LoraConfig as adapter_config.json stores it (the fields
// PEFT has had since 0.9, so that older and newer versions load it). PEFT
// computes each targeted module's output as
//
//	y = base(x) + scaling·lora_B(lora_A(x)),  scaling = lora_alpha/r (lora_alpha/√r with use_rslora)
//
// with r and lora_alpha taken from rank_pattern and alpha_pattern when they
// name the module.
type Config struct {
	AlphaPattern        map[string]float64 `json:"alpha_pattern"`
	AutoMapping         any                `json:"auto_mapping"`
	BaseModelNameOrPath *string            `json:"base_model_name_or_path"`
	Bias                string             `json:"bias"`
	FanInFanOut         bool               `json:"fan_in_fan_out"`
	InferenceMode       bool               `json:"inference_mode"`
	InitLoRAWeights     bool               `json:"init_lora_weights"`
	LayersPattern       any                `json:"layers_pattern"`
	LayersToTransform   any                `json:"layers_to_transform"`
	LoRAAlpha           float64            `json:"lora_alpha"`
	LoRADropout         float64            `json:"lora_dropout"`
	ModulesToSave       []string           `json:"modules_to_save"`
	PEFTType            string             `json:"peft_type"`
	R                   int                `json:"r"`
	RankPattern         map[string]int     `json:"rank_pattern"`
	Revision            *string            `json:"revision"`
	TargetModules       []string           `json:"target_modules"`
	TaskType            *string            `json:"task_type"`
	UseDoRA             bool               `json:"use_dora"`
	UseRSLoRA           bool               `json:"use_rslora"`
}

// Scaling is PEFT's scaling of the module called name.
func (c Config) Scaling(module string) float64 {
	r, alpha := c.R, c.LoRAAlpha
	if v, ok := c.RankPattern[module]; ok {
		r = v
	}
	if v, ok := c.AlphaPattern[module]; ok {
		alpha = v
	}
	if c.UseRSLoRA {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// Conv describes a target module that is a Conv2d (stride = kernel, as a
// ViT's patch embedding) computing a prism linear layer over flattened
// patches: the layer's weight [out, KH·KW·Channels] (columns in
// (row, column, channel) order) is the kernel [out, Channels, KH, KW].
type Conv struct{ Channels, KH, KW int }

// Target is where a prism layer's adapter goes in the base model: the
// module's name, the layer's output rows it computes ([Rows[0], Rows[1]);
// a fused layer such as blocks.i.attn.qkv maps to query, key and value),
// and its convolution shape when it is a Conv2d.
type Target struct {
	Module string
	Rows   [2]int
	Conv   *Conv
}

// Naming maps a prism layer (out × in) to its targets in the base model.
type Naming func(layer string, out, in int) ([]Target, error)

// PrismNaming keeps prism's layer names (one module per layer).
func PrismNaming(layer string, out, _ int) ([]Target, error) {
	return []Target{{Module: layer, Rows: [2]int{0, out}}}, nil
}

// Options tune Export.
type Options struct {
	// Naming maps prism's layers to the base model's modules; nil keeps
	// prism's names (PrismNaming).
	Naming Naming
	// BaseModel is base_model_name_or_path ("" writes null).
	BaseModel string
	// Float64 writes F64 tensors instead of PEFT's usual F32.
	Float64 bool
}

// Plain returns the layer's adapter as a plain LoRA on the pretrained weight
// W₀: factors a (r′×n), b (m×r′) and scale with W₀ + scale·b·a = W₁ (the
// layer's trained weight; for DoRA the direction W′ its magnitude rescales).
// LoRA and DoRA start from B = 0 and are already plain (r′ = r); the window
// methods and OLoRA change the frozen weight to Wres, so they become the
// rank-2r LoRA ΔW = scale·[B′ | −B]·[A′ ; A] of DESIGN.md §1 (lowrank.ToLoRA).
func (l Layer) Plain() (a, b lowrank.Matrix[float64], err error) {
	if err := l.check(); err != nil {
		return a, b, err
	}
	if isZero(l.InitB) {
		return l.A, l.B, nil
	}
	if l.Method == adapter.MethodDoRA {
		return a, b, fmt.Errorf("peft: layer %q: DoRA adapter with a non-zero initial lora_B: PEFT's DoRA cannot express it", l.Name)
	}
	init := lowrank.Adapter[float64]{Layer: l.Name, Method: l.Method, Rank: l.Rank, Scale: l.Scale, A: l.InitA, B: l.InitB}
	return lowrank.ToLoRA(init, l.A, l.B)
}

// AlphaFor is PEFT's lora_alpha that gives a LoRA of the given rank this
// layer's scale: Scale·rank, or Scale·√rank with rsLoRA.
func (l Layer) AlphaFor(rank int) float64 {
	if l.RSLoRA {
		return l.Scale * math.Sqrt(float64(rank))
	}
	return l.Scale * float64(rank)
}

// Export writes t as a PEFT LoRA adapter in dir: adapter_model.safetensors
// with base_model.model.MODULE.lora_A.weight [r′, in], .lora_B.weight
// [out, r′] (Conv2d targets: [r′, C, KH, KW] and [out, r′, 1, 1]), DoRA's
// .lora_magnitude_vector ([out], or [1, out, 1, 1] for a Conv2d), and the
// saved modules' MODULE.weight/.bias (modules_to_save); adapter_config.json
// with lora_alpha (and alpha_pattern) chosen so that PEFT's scaling equals
// the trained scale at the exported rank r′ (see Layer.Plain). Loaded by PEFT
// onto the ORIGINAL base weights, the adapter reproduces the fine-tuned
// layers. It returns the written config.
func Export(dir string, t Trained, o Options) (Config, error) {
	var cfg Config
	if len(t.Layers) == 0 {
		return cfg, fmt.Errorf("peft: no adapters to export (full fine-tuning and head-only training have none: export the model instead)")
	}
	naming := o.Naming
	if naming == nil {
		naming = PrismNaming
	}
	dora := t.Layers[0].Method == adapter.MethodDoRA
	rslora := t.Layers[0].RSLoRA
	type moduleRA struct {
		r     int
		alpha float64
	}
	perModule := map[string]moduleRA{}
	var tensors []safetensors.Tensor
	put := func(name string, shape []int, data []float64) {
		if o.Float64 {
			tensors = append(tensors, safetensors.FromFloats(KeyPrefix+name, shape, data))
			return
		}
		f := make([]float32, len(data))
		for i, x := range data {
			f[i] = float32(x)
		}
		tensors = append(tensors, safetensors.FromFloats(KeyPrefix+name, shape, f))
	}
	for _, l := range t.Layers {
		if (l.Method == adapter.MethodDoRA) != dora {
			return cfg, fmt.Errorf("peft: layers %q (%s) and %q (%s): PEFT's use_dora applies to every module; export DoRA and other methods separately",
				t.Layers[0].Name, t.Layers[0].Method, l.Name, l.Method)
		}
		if l.RSLoRA != rslora {
			return cfg, fmt.Errorf("peft: layers %q and %q differ in rsLoRA: PEFT's use_rslora applies to every module", t.Layers[0].Name, l.Name)
		}
		a, b, err := l.Plain()
		if err != nil {
			return cfg, err
		}
		r := a.Rows
		m, n := b.Rows, a.Cols
		targets, err := naming(l.Name, m, n)
		if err != nil {
			return cfg, err
		}
		if err := checkTargets(l.Name, m, n, targets); err != nil {
			return cfg, err
		}
		for _, tg := range targets {
			if _, dup := perModule[tg.Module]; dup {
				return cfg, fmt.Errorf("peft: module %q is the target of two layers", tg.Module)
			}
			perModule[tg.Module] = moduleRA{r, l.AlphaFor(r)}
			rows := tg.Rows[1] - tg.Rows[0]
			bRows := b.Data[tg.Rows[0]*r : tg.Rows[1]*r]
			if tg.Conv != nil {
				c := tg.Conv
				put(tg.Module+".lora_A.weight", []int{r, c.Channels, c.KH, c.KW}, patchToConv(a.Data, r, c.Channels, c.KH, c.KW))
				put(tg.Module+".lora_B.weight", []int{rows, r, 1, 1}, bRows)
			} else {
				put(tg.Module+".lora_A.weight", []int{r, n}, a.Data)
				put(tg.Module+".lora_B.weight", []int{rows, r}, bRows)
			}
			if dora {
				mag := l.Magnitude[tg.Rows[0]:tg.Rows[1]]
				if tg.Conv != nil {
					put(tg.Module+".lora_magnitude_vector", []int{1, rows, 1, 1}, mag)
				} else {
					put(tg.Module+".lora_magnitude_vector", []int{rows}, mag)
				}
			}
		}
	}
	var saved []string
	for _, s := range t.Saved {
		targets, err := naming(s.Name, s.Weight.Rows, s.Weight.Cols)
		if err != nil {
			return cfg, err
		}
		if len(targets) != 1 || targets[0].Conv != nil || targets[0].Rows != [2]int{0, s.Weight.Rows} {
			return cfg, fmt.Errorf("peft: saved module %q must map to one linear module (got %v)", s.Name, targets)
		}
		name := targets[0].Module
		saved = append(saved, name)
		put(name+".weight", []int{s.Weight.Rows, s.Weight.Cols}, s.Weight.Data)
		if s.Bias != nil {
			put(name+".bias", []int{len(s.Bias)}, s.Bias)
		}
	}

	// Global r and lora_alpha: the most common; patterns for the others.
	cfg = Config{AlphaPattern: map[string]float64{}, RankPattern: map[string]int{}, Bias: "none", InferenceMode: true,
		InitLoRAWeights: true, PEFTType: "LORA", UseDoRA: dora, UseRSLoRA: rslora, ModulesToSave: saved}
	if o.BaseModel != "" {
		cfg.BaseModelNameOrPath = &o.BaseModel
	}
	count := map[moduleRA]int{}
	for _, ra := range perModule {
		count[ra]++
	}
	best, bestN := moduleRA{}, -1
	for ra, c := range count {
		if c > bestN || (c == bestN && (ra.r < best.r || (ra.r == best.r && ra.alpha < best.alpha))) {
			best, bestN = ra, c
		}
	}
	cfg.R, cfg.LoRAAlpha = best.r, best.alpha
	for module, ra := range perModule {
		cfg.TargetModules = append(cfg.TargetModules, module)
		if ra.r != best.r {
			cfg.RankPattern[module] = ra.r
		}
		if ra.alpha != best.alpha {
			cfg.AlphaPattern[module] = ra.alpha
		}
	}
	sort.Strings(cfg.TargetModules)

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cfg, err
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return cfg, err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return cfg, err
	}
	path := filepath.Join(dir, ConfigFile)
	if err := os.WriteFile(path+".tmp", append(data, '\n'), 0o644); err != nil {
		return cfg, err
	}
	return cfg, os.Rename(path+".tmp", path)
}

// checkTargets verifies that the targets tile the layer's output rows and
// that a Conv2d target's kernel has the layer's input size.
func checkTargets(layer string, m, n int, targets []Target) error {
	if len(targets) == 0 {
		return fmt.Errorf("peft: layer %q maps to no module", layer)
	}
	next := 0
	for _, t := range targets {
		if t.Rows[0] != next || t.Rows[1] <= t.Rows[0] {
			return fmt.Errorf("peft: layer %q (%d×%d): targets %v do not tile its %d output rows", layer, m, n, targets, m)
		}
		next = t.Rows[1]
		if c := t.Conv; c != nil && c.Channels*c.KH*c.KW != n {
			return fmt.Errorf("peft: layer %q: Conv2d target %q has %d×%d×%d kernel inputs, the layer %d", layer, t.Module, c.Channels, c.KH, c.KW, n)
		}
	}
	if next != m {
		return fmt.Errorf("peft: layer %q (%d×%d): targets %v cover %d of %d output rows", layer, m, n, targets, next, m)
	}
	if slices.ContainsFunc(targets, func(t Target) bool { return t.Module == "" }) {
		return fmt.Errorf("peft: layer %q: empty module name", layer)
	}
	return nil
}

// patchToConv permutes rows [r, KH·KW·C] (columns in (row, column, channel)
// order) to Conv2d kernels [r, C, KH, KW].
func patchToConv(w []float64, r, channels, kh, kw int) []float64 {
	out := make([]float64, len(w))
	for o := range r {
		for c := range channels {
			for i := range kh {
				for j := range kw {
					out[((o*channels+c)*kh+i)*kw+j] = w[o*kh*kw*channels+(i*kw+j)*channels+c]
				}
			}
		}
	}
	return out
}
