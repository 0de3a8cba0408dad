package peft_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/adapter/peft"
	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

var testBackend = func() backends.Backend {
	b, err := backend.New("go")
	if err != nil {
		panic(err)
	}
	return b
}()

// The test model: a patch embedding (computed by a Conv2d in the "base
// model" of testNaming), a fused q/k/v layer (three modules there), an MLP
// layer, and a new head trained in full.
var testLayers = []adapter.Layer{
	{Name: "patch_embed.proj", Out: 6, In: 12}, // kernel 3 channels × 2 × 2
	{Name: "blocks.0.attn.qkv", Out: 12, In: 4},
	{Name: "blocks.0.mlp.fc1", Out: 8, In: 4},
}

const headName = "head_taskB"

// testNaming maps the layers to base-model modules the way a transformers
// ViT names them.
func testNaming(layer string, out, in int) ([]peft.Target, error) {
	switch layer {
	case "patch_embed.proj":
		return []peft.Target{{Module: "vit.embeddings.projection", Rows: [2]int{0, out}, Conv: &peft.Conv{Channels: 3, KH: 2, KW: 2}}}, nil
	case "blocks.0.attn.qkv":
		d := out / 3
		return []peft.Target{{Module: "vit.attention.query", Rows: [2]int{0, d}}, {Module: "vit.attention.key", Rows: [2]int{d, 2 * d}},
			{Module: "vit.attention.value", Rows: [2]int{2 * d, 3 * d}}}, nil
	case "blocks.0.mlp.fc1":
		return []peft.Target{{Module: "vit.intermediate.dense", Rows: [2]int{0, out}}}, nil
	case headName:
		return []peft.Target{{Module: "classifier", Rows: [2]int{0, out}}}, nil
	}
	return nil, fmt.Errorf("no module for %q", layer)
}

// fixture is a model whose adapters were attached and then "trained" (every
// trainable variable moved by a random step, as an optimiser would).
type fixture struct {
	ctx     *mlctx.Context
	adapted *adapter.Adapted
	w0      map[string]lowrank.Matrix[float64]
	bias    map[string][]float64
	dtype   dtypes.DType
}

func newFixture(t *testing.T, cfg adapter.Config, dtype dtypes.DType, seed uint64) *fixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	ctx := mlctx.New()
	f := &fixture{ctx: ctx, w0: map[string]lowrank.Matrix[float64]{}, bias: map[string][]float64{}, dtype: dtype}
	value := func(data []float64, dims ...int) *tensors.Tensor {
		if dtype == dtypes.Float64 {
			return tensors.FromFlatDataAndDimensions(slices.Clone(data), dims...)
		}
		f32 := make([]float32, len(data))
		for i, x := range data {
			f32[i] = float32(x)
			data[i] = float64(f32[i]) // what the variable holds
		}
		return tensors.FromFlatDataAndDimensions(f32, dims...)
	}
	random := func(n int, scale float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = scale * rng.NormFloat64()
		}
		return out
	}
	for _, l := range append(slices.Clone(testLayers), adapter.Layer{Name: headName, Out: 5, In: 8}) {
		w, b := random(l.Out*l.In, 1/math.Sqrt(float64(l.In))), random(l.Out, 0.1)
		ctx.In(l.Name).VariableWithValue("weight", value(w, l.Out, l.In))
		ctx.In(l.Name).VariableWithValue("bias", value(b, l.Out))
		f.w0[l.Name], f.bias[l.Name] = lowrank.Matrix[float64]{Rows: l.Out, Cols: l.In, Data: w}, b
	}
	a, err := adapter.Attach(context.Background(), ctx, adapter.NewPlan(cfg, `patch_embed\.proj|blocks\..*`), testLayers, adapter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.adapted = a
	// One "training step": every adapter variable and the head move.
	for v := range ctx.IterVariables() {
		if !v.Trainable && !strings.Contains(v.Scope(), headName) {
			continue
		}
		old, _ := v.Value()
		dims := old.Shape().Dimensions
		var data []float64
		if dtype == dtypes.Float64 {
			data = tensors.MustCopyFlatData[float64](old)
		} else {
			for _, x := range tensors.MustCopyFlatData[float32](old) {
				data = append(data, float64(x))
			}
		}
		for i := range data {
			data[i] += 0.3 * rng.NormFloat64() * (math.Abs(data[i]) + 0.1)
		}
		if err := v.SetValue(value(data, dims...)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// outputs computes the fine-tuned layer outputs y = layer(x) with prism's
// adapted layers, for x [N, in] per layer (and the head, a plain layer).
func (f *fixture) outputs(t *testing.T, xs map[string][]float64, n int) map[string][]float64 {
	t.Helper()
	names := append([]string{}, layerNames()...)
	names = append(names, headName)
	out := map[string][]float64{}
	for _, name := range names {
		in := f.w0[name].Cols
		x := xs[name]
		var xt *tensors.Tensor
		if f.dtype == dtypes.Float64 {
			xt = tensors.FromFlatDataAndDimensions(slices.Clone(x), n, in)
		} else {
			f32 := make([]float32, len(x))
			for i, v := range x {
				f32[i] = float32(v)
			}
			xt = tensors.FromFlatDataAndDimensions(f32, n, in)
		}
		linear := f.adapted.Linear(func(ctx *mlctx.Context, name string, x *Node, outDim int) *Node {
			s := ctx.In(name)
			w := s.GetVariableByScopeAndName(s.Scope(), "weight").ValueGraph(x.Graph())
			b := s.GetVariableByScopeAndName(s.Scope(), "bias").ValueGraph(x.Graph())
			return adapter.Dense(x, w, b)
		})
		y, err := mlctx.ExecOnce(testBackend, f.ctx, func(ctx *mlctx.Context, x *Node) *Node {
			return linear(ctx, name, x, f.w0[name].Rows)
		}, xt)
		if err != nil {
			t.Fatal(err)
		}
		if f.dtype == dtypes.Float64 {
			out[name] = tensors.MustCopyFlatData[float64](y)
		} else {
			for _, v := range tensors.MustCopyFlatData[float32](y) {
				out[name] = append(out[name], float64(v))
			}
		}
	}
	return out
}

func layerNames() []string {
	var out []string
	for _, l := range testLayers {
		out = append(out, l.Name)
	}
	return out
}

// peftFiles is an exported adapter read back without the package.
type peftFiles struct {
	config  map[string]any
	tensors map[string][]float64
	shapes  map[string][]int
}

func readPEFT(t *testing.T, dir string) peftFiles {
	t.Helper()
	p := peftFiles{tensors: map[string][]float64{}, shapes: map[string][]int{}}
	data, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &p.config); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Metadata()["format"] != "pt" {
		t.Errorf("adapter_model.safetensors metadata %v, want format=pt", r.Metadata())
	}
	for _, info := range r.Tensors() {
		v, err := r.Float64s(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		p.tensors[info.Name], p.shapes[info.Name] = v, info.Shape
	}
	return p
}

// scaling is PEFT's: lora_alpha/r or lora_alpha/√r (use_rslora), with the
// module's rank_pattern and alpha_pattern entries when present.
func (p peftFiles) scaling(module string) (float64, int) {
	r := int(p.config["r"].(float64))
	alpha := p.config["lora_alpha"].(float64)
	if v, ok := p.config["rank_pattern"].(map[string]any)[module]; ok {
		r = int(v.(float64))
	}
	if v, ok := p.config["alpha_pattern"].(map[string]any)[module]; ok {
		alpha = v.(float64)
	}
	if p.config["use_rslora"].(bool) {
		return alpha / math.Sqrt(float64(r)), r
	}
	return alpha / float64(r), r
}

// moduleWeight is what PEFT computes for a module on the original weight
// w0rows (its rows of the prism layer, out×in; for the Conv2d, the kernel
// flattened in prism's (row, column, channel) order): W0 + scaling·B·A,
// and for DoRA the rows rescaled to the magnitude. A Conv2d's A
// [r, C, KH, KW] is flattened back to prism's column order here.
func (p peftFiles) moduleWeight(t *testing.T, module string, w0rows lowrank.Matrix[float64], conv *peft.Conv) lowrank.Matrix[float64] {
	t.Helper()
	key := "base_model.model." + module
	a, aShape := p.tensors[key+".lora_A.weight"], p.shapes[key+".lora_A.weight"]
	b, bShape := p.tensors[key+".lora_B.weight"], p.shapes[key+".lora_B.weight"]
	if a == nil || b == nil {
		t.Fatalf("module %s: lora_A or lora_B missing", module)
	}
	s, r := p.scaling(module)
	m, n := w0rows.Rows, w0rows.Cols
	if aShape[0] != r || bShape[0] != m || bShape[1] != r {
		t.Fatalf("module %s: lora_A %v, lora_B %v for r=%d and %d rows", module, aShape, bShape, r, m)
	}
	// A in prism's column order.
	aFlat := make([]float64, r*n)
	if conv != nil {
		if !slices.Equal(aShape, []int{r, conv.Channels, conv.KH, conv.KW}) || !slices.Equal(bShape, []int{m, r, 1, 1}) {
			t.Fatalf("conv module %s: lora_A %v, lora_B %v", module, aShape, bShape)
		}
		for o := range r {
			for c := range conv.Channels {
				for i := range conv.KH {
					for j := range conv.KW {
						aFlat[o*n+(i*conv.KW+j)*conv.Channels+c] = a[((o*conv.Channels+c)*conv.KH+i)*conv.KW+j]
					}
				}
			}
		}
	} else {
		if !slices.Equal(aShape, []int{r, n}) {
			t.Fatalf("module %s: lora_A %v, want [%d %d]", module, aShape, r, n)
		}
		copy(aFlat, a)
	}
	w := lowrank.Matrix[float64]{Rows: m, Cols: n, Data: slices.Clone(w0rows.Data)}
	for i := range m {
		for j := range n {
			sum := 0.0
			for k := range r {
				sum += b[i*r+k] * aFlat[k*n+j]
			}
			w.Data[i*n+j] += s * sum
		}
	}
	if mag, ok := p.tensors[key+".lora_magnitude_vector"]; ok {
		want := []int{m}
		if conv != nil {
			want = []int{1, m, 1, 1}
		}
		if !slices.Equal(p.shapes[key+".lora_magnitude_vector"], want) {
			t.Fatalf("module %s: magnitude shape %v, want %v", module, p.shapes[key+".lora_magnitude_vector"], want)
		}
		for i := range m {
			norm := 0.0
			for j := range n {
				norm += w.Data[i*n+j] * w.Data[i*n+j]
			}
			norm = math.Sqrt(norm)
			for j := range n {
				w.Data[i*n+j] *= mag[i] / norm
			}
		}
	}
	return w
}

// rowsOf returns rows [a, b) of m.
func rowsOf(m lowrank.Matrix[float64], a, b int) lowrank.Matrix[float64] {
	return lowrank.Matrix[float64]{Rows: b - a, Cols: m.Cols, Data: m.Data[a*m.Cols : b*m.Cols]}
}

// apply computes y = x·Wᵀ + b for x [N, in].
func apply(w lowrank.Matrix[float64], bias, x []float64) []float64 {
	n := len(x) / w.Cols
	y := make([]float64, n*w.Rows)
	for s := range n {
		for o := range w.Rows {
			sum := bias[o]
			for j := range w.Cols {
				sum += w.Data[o*w.Cols+j] * x[s*w.Cols+j]
			}
			y[s*w.Rows+o] = sum
		}
	}
	return y
}

// peftFieldNames are LoraConfig's fields as PEFT writes them.
var peftFieldNames = []string{"alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out",
	"inference_mode", "init_lora_weights", "layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout",
	"modules_to_save", "peft_type", "r", "rank_pattern", "revision", "target_modules", "task_type", "use_dora", "use_rslora"}

// TestExportReproducesFineTunedLayers: for every adapter method, the
// exported PEFT adapter applied to the original weights (computed here from
// the files alone, as PEFT computes it) gives the fine-tuned layers'
// outputs.
func TestExportReproducesFineTunedLayers(t *testing.T) {
	cases := []struct {
		cfg   adapter.Config
		dtype dtypes.DType
		rank  int // exported rank
	}{
		{adapter.Config{Method: adapter.MethodLoRA, Rank: 2, Alpha: 4}, dtypes.Float64, 2},
		{adapter.Config{Method: adapter.MethodPiSSA, Rank: 2, Alpha: 4}, dtypes.Float64, 4},
		{adapter.Config{Method: adapter.MethodMid, Rank: 2, Alpha: 4}, dtypes.Float64, 4},
		{adapter.Config{Method: adapter.MethodMiLoRA, Rank: 2, Alpha: 4}, dtypes.Float64, 4},
		{adapter.Config{Method: adapter.MethodWindow, Rank: 2, Alpha: 2, Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 1}}, dtypes.Float64, 4},
		{adapter.Config{Method: adapter.MethodOLoRA, Rank: 2, Alpha: 4}, dtypes.Float64, 4},
		{adapter.Config{Method: adapter.MethodDoRA, Rank: 2, Alpha: 4}, dtypes.Float64, 2},
		{adapter.Config{Method: adapter.MethodMid, Rank: 2, Alpha: 3, RSLoRA: true}, dtypes.Float64, 4},
		{adapter.Config{Method: adapter.MethodMid, Rank: 2, Alpha: 4}, dtypes.Float32, 4},
		{adapter.Config{Method: adapter.MethodDoRA, Rank: 3, Alpha: 6}, dtypes.Float32, 3},
	}
	for ci, tc := range cases {
		name := fmt.Sprintf("%s/rslora=%v/%s", tc.cfg.Method, tc.cfg.RSLoRA, tc.dtype)
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.cfg, tc.dtype, uint64(ci+1))
			layers, err := peft.FromAdapted(f.ctx, f.adapted)
			if err != nil {
				t.Fatal(err)
			}
			head, err := peft.SavedFrom(f.ctx, headName)
			if err != nil {
				t.Fatal(err)
			}
			trained := peft.Trained{Layers: layers, Saved: []peft.SavedModule{head}}
			// Through the run directory's file, as `prism export peft` does.
			path := filepath.Join(t.TempDir(), "adapters.safetensors")
			if err := peft.WriteTrained(path, trained); err != nil {
				t.Fatal(err)
			}
			back, err := peft.ReadTrained(path)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := peft.Export(dir, back, peft.Options{Naming: testNaming, BaseModel: "google/vit-test", Float64: tc.dtype == dtypes.Float64}); err != nil {
				t.Fatal(err)
			}
			p := readPEFT(t, dir)

			// adapter_config.json: exactly PEFT's field names and the values.
			var keys []string
			for k := range p.config {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !slices.Equal(keys, peftFieldNames) {
				t.Errorf("adapter_config.json fields %v,\nPEFT's are %v", keys, peftFieldNames)
			}
			wantScale := tc.cfg.Scale()
			wantAlpha := wantScale * float64(tc.rank)
			if tc.cfg.RSLoRA {
				wantAlpha = wantScale * math.Sqrt(float64(tc.rank))
			}
			c := p.config
			if c["peft_type"] != "LORA" || int(c["r"].(float64)) != tc.rank || math.Abs(c["lora_alpha"].(float64)-wantAlpha) > 1e-12 ||
				c["use_rslora"] != tc.cfg.RSLoRA || c["use_dora"] != (tc.cfg.Method == adapter.MethodDoRA) || c["bias"] != "none" ||
				c["fan_in_fan_out"] != false || c["base_model_name_or_path"] != "google/vit-test" || c["init_lora_weights"] != true {
				t.Errorf("adapter_config.json %v", c)
			}
			if got, _ := json.Marshal([]any{c["target_modules"], c["modules_to_save"]}); string(got) !=
				`[["vit.attention.key","vit.attention.query","vit.attention.value","vit.embeddings.projection","vit.intermediate.dense"],["classifier"]]` {
				t.Errorf("target_modules, modules_to_save = %s", got)
			}
			if s, _ := p.scaling("vit.attention.query"); math.Abs(s-wantScale) > 1e-12*wantScale {
				t.Errorf("PEFT's scaling %v, trained scale %v", s, wantScale)
			}
			for name := range p.tensors {
				if !strings.HasPrefix(name, "base_model.model.") {
					t.Errorf("tensor %q lacks PEFT's base_model.model. prefix", name)
				}
			}

			// Fine-tuned outputs vs PEFT on the original weights.
			rng := rand.New(rand.NewPCG(uint64(ci), 99))
			const n = 7
			xs := map[string][]float64{}
			for name, w := range f.w0 {
				x := make([]float64, n*w.Cols)
				for i := range x {
					x[i] = rng.NormFloat64()
					if tc.dtype == dtypes.Float32 {
						x[i] = float64(float32(x[i]))
					}
				}
				xs[name] = x
			}
			want := f.outputs(t, xs, n)
			tol := 1e-10
			if tc.dtype == dtypes.Float32 {
				tol = 3e-5
			}
			for _, l := range testLayers {
				targets, _ := testNaming(l.Name, l.Out, l.In)
				var rows []float64 // W for the whole prism layer, rows of its modules in order
				for _, tg := range targets {
					w := p.moduleWeight(t, tg.Module, rowsOf(f.w0[l.Name], tg.Rows[0], tg.Rows[1]), tg.Conv)
					rows = append(rows, w.Data...)
				}
				got := apply(lowrank.Matrix[float64]{Rows: l.Out, Cols: l.In, Data: rows}, f.bias[l.Name], xs[l.Name])
				if d := maxDiff(got, want[l.Name]); d > tol {
					t.Errorf("%s: PEFT on the original weights differs from the fine-tuned layer by %.3g", l.Name, d)
				}
			}
			hw := lowrank.Matrix[float64]{Rows: 5, Cols: 8, Data: p.tensors["base_model.model.classifier.weight"]}
			if d := maxDiff(apply(hw, p.tensors["base_model.model.classifier.bias"], xs[headName]), want[headName]); d > tol {
				t.Errorf("saved head differs from the trained head by %.3g", d)
			}
		})
	}
}

// maxDiff is max |a − b| / max(1, max |b|).
func maxDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	scale, worst := 1.0, 0.0
	for i := range a {
		scale = math.Max(scale, math.Abs(b[i]))
		worst = math.Max(worst, math.Abs(a[i]-b[i]))
	}
	return worst / scale
}

func TestExportRefusals(t *testing.T) {
	if _, err := peft.Export(t.TempDir(), peft.Trained{}, peft.Options{}); err == nil || !strings.Contains(err.Error(), "no adapters") {
		t.Errorf("empty: err = %v", err)
	}
	lora := newFixture(t, adapter.Config{Method: adapter.MethodLoRA, Rank: 2}, dtypes.Float64, 1)
	dora := newFixture(t, adapter.Config{Method: adapter.MethodDoRA, Rank: 2}, dtypes.Float64, 2)
	a, _ := peft.FromAdapted(lora.ctx, lora.adapted)
	b, _ := peft.FromAdapted(dora.ctx, dora.adapted)
	b[0].Name = "other"
	if _, err := peft.Export(t.TempDir(), peft.Trained{Layers: []peft.Layer{a[0], b[0]}}, peft.Options{}); err == nil || !strings.Contains(err.Error(), "use_dora") {
		t.Errorf("mixed DoRA: err = %v", err)
	}
	bad := func(layer string, out, in int) ([]peft.Target, error) {
		return []peft.Target{{Module: "x", Rows: [2]int{0, out - 1}}}, nil
	}
	if _, err := peft.Export(t.TempDir(), peft.Trained{Layers: a}, peft.Options{Naming: bad}); err == nil || !strings.Contains(err.Error(), "rows") {
		t.Errorf("bad naming: err = %v", err)
	}
	// Full fine-tuning has no adapter to read.
	full := newFixture(t, adapter.Config{Method: adapter.MethodFull}, dtypes.Float64, 3)
	if layers, err := peft.FromAdapted(full.ctx, full.adapted); err != nil || len(layers) != 0 {
		t.Errorf("full: %d layers, err %v", len(layers), err)
	}
}

// TestPrismNaming exports under prism's own layer names.
func TestPrismNaming(t *testing.T) {
	f := newFixture(t, adapter.Config{Method: adapter.MethodMid, Rank: 2, Alpha: 4}, dtypes.Float64, 5)
	layers, err := peft.FromAdapted(f.ctx, f.adapted)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, err := peft.Export(dir, peft.Trained{Layers: layers}, peft.Options{Float64: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.TargetModules, []string{"blocks.0.attn.qkv", "blocks.0.mlp.fc1", "patch_embed.proj"}) || cfg.BaseModelNameOrPath != nil {
		t.Errorf("config %+v", cfg)
	}
	p := readPEFT(t, dir)
	if sh := p.shapes["base_model.model.blocks.0.attn.qkv.lora_B.weight"]; !slices.Equal(sh, []int{12, 4}) {
		t.Errorf("qkv lora_B shape %v, want [12 4] (rank 2r = 4)", sh)
	}
	w := p.moduleWeight(t, "blocks.0.attn.qkv", f.w0["blocks.0.attn.qkv"], nil)
	merged, err := f.adapted.Merged(f.ctx, "blocks.0.attn.qkv")
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(w.Data, merged.Data); d > 1e-12 {
		t.Errorf("W0 + scale·B·A differs from the merged weight by %.3g", d)
	}
}
