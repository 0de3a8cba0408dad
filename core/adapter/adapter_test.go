package adapter

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/lowrank"
)

var testBackend backends.Backend

func getBackend(t testing.TB) backends.Backend {
	t.Helper()
	if testBackend == nil {
		b, err := backend.New("go")
		if err != nil {
			t.Fatal(err)
		}
		testBackend = b
	}
	return testBackend
}

// toyLayers is a three-layer network: enc (12×9), blocks.0.fc (7×12), head (4×7).
var toyLayers = []Layer{{"enc", 12, 9}, {"blocks.0.fc", 7, 12}, {"head", 4, 7}}

// newToy creates the toy network's variables with seeded random values.
func newToy(t testing.TB, dtype dtypes.DType, seed uint64) *mlctx.Context {
	t.Helper()
	ctx := mlctx.New()
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, l := range toyLayers {
		w := make([]float64, l.Out*l.In)
		for i := range w {
			w[i] = rng.NormFloat64() / math.Sqrt(float64(l.In))
		}
		b := make([]float64, l.Out)
		for i := range b {
			b[i] = 0.1 * rng.NormFloat64()
		}
		if _, err := setVariable(ctx, l.Name, WeightName, newTensor(dtype, w, l.Out, l.In), true); err != nil {
			t.Fatal(err)
		}
		if _, err := setVariable(ctx, l.Name, BiasName, newTensor(dtype, b, l.Out), true); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

// plainDense is the fallback Linear: y = x·Wᵀ + b from the layer's variables.
func plainDense(ctx *mlctx.Context, name string, x *Node, outDim int) *Node {
	g := x.Graph()
	return Dense(x, variable(ctx, name, WeightName).ValueGraph(g), variable(ctx, name, BiasName).ValueGraph(g))
}

// toyForward runs the toy network with linear: tanh between layers.
func toyForward(ctx *mlctx.Context, linear LinearFunc, x *Node) *Node {
	h := x
	for i, l := range toyLayers {
		h = linear(ctx, l.Name, h, l.Out)
		if i < len(toyLayers)-1 {
			h = Tanh(h)
		}
	}
	return h
}

func randomInput(dtype dtypes.DType, rows, cols int, seed uint64) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 11))
	data := make([]float64, rows*cols)
	for i := range data {
		data[i] = rng.NormFloat64()
	}
	return newTensor(dtype, data, rows, cols)
}

func values(t testing.TB, x *tensors.Tensor) []float64 {
	t.Helper()
	switch x.DType() {
	case dtypes.Float32:
		f := tensors.MustCopyFlatData[float32](x)
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](x)
	}
	t.Fatalf("dtype %s", x.DType())
	return nil
}

// run evaluates the toy network on x with linear.
func run(t testing.TB, ctx *mlctx.Context, linear LinearFunc, x *tensors.Tensor) []float64 {
	t.Helper()
	exec, err := mlctx.NewExec(getBackend(t), ctx, func(ctx *mlctx.Context, x *Node) *Node {
		return toyForward(ctx, linear, x)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(x)
	if err != nil {
		t.Fatal(err)
	}
	return values(t, out[0])
}

func maxRelDiff(a, b []float64) float64 {
	var diff, scale float64
	for i := range a {
		diff = math.Max(diff, math.Abs(a[i]-b[i]))
		scale = math.Max(scale, math.Abs(b[i]))
	}
	return diff / math.Max(scale, 1e-300)
}

// allMethods are configs covering every method (windows by preset, start and fraction).
func allMethods() []Config {
	return []Config{
		{Method: MethodLoRA, Rank: 3, Alpha: 6, Seed: 1},
		{Method: MethodPiSSA, Rank: 3, Alpha: 6},
		{Method: MethodMiLoRA, Rank: 3, Alpha: 3},
		{Method: MethodMid, Rank: 2, Alpha: 8, RSLoRA: true},
		{Method: MethodWindow, Rank: 2, Alpha: 4, Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 3}},
		{Method: MethodWindow, Rank: 2, Alpha: 4, Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0.5}},
		{Method: MethodPiSSA, Rank: 3, Alpha: 6, SVD: lowrank.SVDRandomized, Seed: 3},
		{Method: MethodOLoRA, Rank: 3, Alpha: 6},
		{Method: MethodDoRA, Rank: 3, Alpha: 6, Seed: 2},
		{Method: MethodFull},
		{Method: MethodHead},
	}
}

// backboneTargets adapts enc and the block, not the head.
var backboneTargets = []string{"enc", `blocks\.\d+\..*`}

// TestStepZeroIdentity: right after Attach every method's network computes
// what the pretrained network computed.
func TestStepZeroIdentity(t *testing.T) {
	for _, dtype := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		for _, c := range allMethods() {
			t.Run(fmt.Sprintf("%s/%s", dtype, c), func(t *testing.T) {
				ctx := newToy(t, dtype, 42)
				x := randomInput(dtype, 5, 9, 1)
				before := run(t, ctx, plainDense, x)
				a, err := Attach(context.Background(), ctx, NewPlan(c, backboneTargets...), toyLayers, Options{})
				if err != nil {
					t.Fatal(err)
				}
				after := run(t, ctx, a.Linear(plainDense), x)
				tol := 1e-12
				if dtype == dtypes.Float32 {
					tol = 2e-6
				}
				if d := maxRelDiff(after, before); d > tol {
					t.Errorf("step-0 output differs from the pretrained network: max rel diff %.3g > %g", d, tol)
				}
				// Each adapted layer's merged weight is W₀ at step 0.
				for _, l := range a.Layers() {
					w1, err := a.Merged(ctx, l.Name)
					if err != nil {
						t.Fatal(err)
					}
					if d := maxRelDiff(w1.Data, l.Pretrained.Data); d > tol {
						t.Errorf("layer %s: merged weight at step 0 differs from W₀ by %.3g", l.Name, d)
					}
				}
			})
		}
	}
}

// TestWindowStart: the resolved start and the factors are the window of W₀'s SVD.
func TestWindowStart(t *testing.T) {
	// enc is 12×9 (k = 9), blocks.0.fc is 7×12 (k = 7).
	cases := []struct {
		c                 Config
		encStart, fcStart int
	}{
		{Config{Method: MethodPiSSA, Rank: 3}, 0, 0},
		{Config{Method: MethodMiLoRA, Rank: 3}, 6, 4},
		{Config{Method: MethodMid, Rank: 3}, 3, 2},
		{Config{Method: MethodWindow, Rank: 2, Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 4}}, 4, 4},
		{Config{Method: MethodWindow, Rank: 3, Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0.5}}, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.c.String(), func(t *testing.T) {
			ctx := newToy(t, dtypes.Float64, 5)
			a, err := Attach(context.Background(), ctx, NewPlan(tc.c, backboneTargets...), toyLayers, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []struct {
				name  string
				start int
			}{{"enc", tc.encStart}, {"blocks.0.fc", tc.fcStart}} {
				l, _ := a.Layer(want.name)
				if s, r, ok := l.Window(); !ok || s != want.start || r != tc.c.Rank {
					t.Errorf("%s: window (%d, %d, %v), want start %d rank %d", want.name, s, r, ok, want.start, tc.c.Rank)
				}
				// scale·B·A = U[:, s:s+r]·diag(S[s:s+r])·V[:, s:s+r]ᵀ.
				f := l.SVD
				q := f.Len()
				ba := MergeLoRA(lowrank.NewMatrix[float64](l.Out, l.In), l.InitA, l.InitB, l.Scale)
				for i := 0; i < l.Out; i++ {
					for j := 0; j < l.In; j++ {
						var want float64
						for c := l.Start; c < l.Start+tc.c.Rank; c++ {
							want += f.U.Data[i*q+c] * f.S[c] * f.V.Data[j*q+c]
						}
						if got := ba.At(i, j); math.Abs(got-want) > 1e-12 {
							t.Fatalf("%s: scale·B·A[%d,%d] = %v, window product %v", l.Name, i, j, got, want)
						}
					}
				}
			}
		})
	}
}

// trainableInGraph lists the trainable variables the toy loss graph uses.
func trainableInGraph(t *testing.T, ctx *mlctx.Context, linear LinearFunc) []string {
	t.Helper()
	var names []string
	exec, err := mlctx.NewExec(getBackend(t), ctx, func(ctx *mlctx.Context, x *Node) *Node {
		loss := ReduceAllSum(Square(toyForward(ctx, linear, x)))
		for v := range ctx.IterVariables() {
			if v.Trainable && v.InUseByGraph(x.Graph()) {
				names = append(names, v.ScopeAndName())
			}
		}
		return loss
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Exec(randomInput(dtypes.Float64, 4, 9, 3)); err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// snapshot returns every variable's values by scope/name.
func snapshot(t *testing.T, ctx *mlctx.Context) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for v := range ctx.IterVariables() {
		if v.Shape().DType != dtypes.Float64 && v.Shape().DType != dtypes.Float32 {
			continue
		}
		vals, err := readValues(v)
		if err != nil {
			t.Fatal(err)
		}
		out[v.ScopeAndName()] = vals
	}
	return out
}

// TestOnlyTrainableVariablesChange: the graph's trainable variables are
// exactly the method's, and an optimiser step changes those and nothing else
// of the model.
func TestOnlyTrainableVariablesChange(t *testing.T) {
	want := map[string][]string{
		MethodLoRA: {"/blocks.0.fc/lora_A", "/blocks.0.fc/lora_B", "/enc/lora_A", "/enc/lora_B"},
		MethodDoRA: {"/blocks.0.fc/lora_A", "/blocks.0.fc/lora_B", "/blocks.0.fc/lora_magnitude",
			"/enc/lora_A", "/enc/lora_B", "/enc/lora_magnitude"},
		MethodFull: {"/blocks.0.fc/bias", "/blocks.0.fc/weight", "/enc/bias", "/enc/weight"},
		MethodHead: nil,
	}
	for _, c := range allMethods() {
		t.Run(c.String(), func(t *testing.T) {
			ctx := newToy(t, dtypes.Float64, 9)
			// The head is frozen by the caller, as core/train does.
			variable(ctx, "head", WeightName).SetTrainable(false)
			variable(ctx, "head", BiasName).SetTrainable(false)
			a, err := Attach(context.Background(), ctx, NewPlan(c, backboneTargets...), toyLayers, Options{})
			if err != nil {
				t.Fatal(err)
			}
			linear := a.Linear(plainDense)
			expected, ok := want[c.Method]
			if !ok {
				expected = want[MethodLoRA]
			}
			if got := trainableInGraph(t, ctx, linear); !slices.Equal(got, expected) {
				t.Fatalf("trainable variables in the graph: %v, want %v", got, expected)
			}
			if c.Method == MethodHead {
				return
			}
			// Perturb B so that every factor gets a gradient (LoRA's B = 0 gives A none).
			if c.IsAdapter() {
				for _, l := range a.Layers() {
					perturb(t, ctx, l.Name, LoRABName, 0.3, 17)
				}
			}
			before := snapshot(t, ctx)
			opt := optimizers.StochasticGradientDescent().WithLearningRate(0.1).WithDecay(false).Done()
			exec, err := mlctx.NewExec(getBackend(t), ctx, func(ctx *mlctx.Context, x *Node) *Node {
				loss := ReduceAllSum(Square(toyForward(ctx, linear, x)))
				opt.UpdateGraph(ctx, x.Graph(), loss)
				return loss
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := exec.Exec(randomInput(dtypes.Float64, 4, 9, 3)); err != nil {
				t.Fatal(err)
			}
			after := snapshot(t, ctx)
			for name, v := range before {
				changed := !slices.Equal(v, after[name])
				if slices.Contains(expected, name) != changed {
					t.Errorf("variable %s: changed=%v, trainable=%v", name, changed, slices.Contains(expected, name))
				}
			}
		})
	}
}

// perturb adds N(0, scale²) noise to a variable.
func perturb(t testing.TB, ctx *mlctx.Context, layer, name string, scale float64, seed uint64) {
	t.Helper()
	v := variable(ctx, layer, name)
	vals, err := readValues(v)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(layer))))
	for i := range vals {
		vals[i] += scale * rng.NormFloat64()
	}
	if err := v.SetValue(newTensor(v.Shape().DType, vals, v.Shape().Dimensions...)); err != nil {
		t.Fatal(err)
	}
}

// TestMergeIdentity: after training-like changes, the adapted network equals
// the plain network with every adapted layer's weight replaced by Merged.
func TestMergeIdentity(t *testing.T) {
	for _, c := range allMethods() {
		t.Run(c.String(), func(t *testing.T) {
			ctx := newToy(t, dtypes.Float64, 21)
			a, err := Attach(context.Background(), ctx, NewPlan(c, backboneTargets...), toyLayers, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range a.Layers() {
				names := []string{WeightName}
				if c.IsAdapter() {
					names = []string{LoRAAName, LoRABName}
				}
				if c.Method == MethodDoRA {
					names = append(names, MagnitudeName)
				}
				for j, n := range names {
					perturb(t, ctx, l.Name, n, 0.2, uint64(10*i+j))
				}
			}
			x := randomInput(dtypes.Float64, 6, 9, 4)
			adapted := run(t, ctx, a.Linear(plainDense), x)

			plain := newToy(t, dtypes.Float64, 21)
			for _, l := range a.Layers() {
				w1, err := a.Merged(ctx, l.Name)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := setVariable(plain, l.Name, WeightName, newTensor(dtypes.Float64, w1.Data, l.Out, l.In), true); err != nil {
					t.Fatal(err)
				}
			}
			merged := run(t, plain, plainDense, x)
			if d := maxRelDiff(adapted, merged); d > 1e-12 {
				t.Errorf("adapted network and merged network differ: max rel diff %.3g", d)
			}
			if c.Method == MethodHead {
				return
			}
			// The weight did change (the test is not vacuous).
			l := a.Layers()[0]
			w1, _ := a.Merged(ctx, l.Name)
			if d := maxRelDiff(w1.Data, l.Pretrained.Data); d < 1e-3 {
				t.Errorf("merged weight barely changed (%.3g): perturbation not applied", d)
			}
		})
	}
}

// TestMergedGraphMatchesHost: LoRAWeight and DoRAWeight (graph) equal
// MergeLoRA and ScaleRows (host).
func TestMergedGraphMatchesHost(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	m, n, r := 6, 5, 2
	mk := func(rows, cols int) lowrank.Matrix[float64] {
		x := lowrank.NewMatrix[float64](rows, cols)
		for i := range x.Data {
			x.Data[i] = rng.NormFloat64()
		}
		return x
	}
	w, a, b, mag := mk(m, n), mk(r, n), mk(m, r), mk(m, 1)
	scale := 1.7
	exec, err := NewExec(getBackend(t), func(w, a, b, mag *Node) (*Node, *Node) {
		return LoRAWeight(w, a, b, scale), DoRAWeight(w, a, b, Reshape(mag, m), scale)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(w.Data, m, n), tensors.FromFlatDataAndDimensions(a.Data, r, n),
		tensors.FromFlatDataAndDimensions(b.Data, m, r), tensors.FromFlatDataAndDimensions(mag.Data, m, 1))
	if err != nil {
		t.Fatal(err)
	}
	lora := MergeLoRA(w, a, b, scale)
	dora := ScaleRows(lora, mag.Data)
	if d := maxRelDiff(values(t, outs[0]), lora.Data); d > 1e-14 {
		t.Errorf("LoRAWeight vs MergeLoRA: %.3g", d)
	}
	if d := maxRelDiff(values(t, outs[1]), dora.Data); d > 1e-14 {
		t.Errorf("DoRAWeight vs ScaleRows: %.3g", d)
	}
}

// TestTrainableParams: exact counts per method, equal to the trainable
// variables' sizes in the context.
func TestTrainableParams(t *testing.T) {
	// enc 12×9, blocks.0.fc 7×12.
	want := map[string]int{
		MethodLoRA:   3*(12+9) + 3*(7+12),
		MethodDoRA:   3*(12+9) + 12 + 3*(7+12) + 7,
		MethodFull:   12*9 + 12 + 7*12 + 7,
		MethodHead:   0,
		MethodPiSSA:  3*(12+9) + 3*(7+12),
		MethodMiLoRA: 3*(12+9) + 3*(7+12),
		MethodMid:    2*(12+9) + 2*(7+12),
		MethodWindow: 2*(12+9) + 2*(7+12),
		MethodOLoRA:  3*(12+9) + 3*(7+12),
	}
	for _, c := range allMethods() {
		t.Run(c.String(), func(t *testing.T) {
			ctx := newToy(t, dtypes.Float32, 1)
			for _, l := range toyLayers {
				variable(ctx, l.Name, WeightName).SetTrainable(false)
				variable(ctx, l.Name, BiasName).SetTrainable(false)
			}
			a, err := Attach(context.Background(), ctx, NewPlan(c, backboneTargets...), toyLayers, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := a.TrainableParams()
			if got != want[c.Method] {
				t.Errorf("TrainableParams = %d, want %d", got, want[c.Method])
			}
			inCtx := 0
			for v := range ctx.IterVariables() {
				if v.Trainable {
					inCtx += v.Shape().Size()
				}
			}
			if inCtx != got {
				t.Errorf("trainable variables in the context hold %d values, TrainableParams says %d", inCtx, got)
			}
		})
	}
}

func TestPlanResolve(t *testing.T) {
	layers := []Layer{{"patch_embed.proj", 8, 4}, {"blocks.0.attn.qkv", 24, 8}, {"blocks.0.mlp.fc1", 16, 8},
		{"blocks.1.attn.qkv", 24, 8}, {"head", 10, 8}}
	lora := Config{Method: MethodLoRA, Rank: 2}
	mid := Config{Method: MethodMid, Rank: 4}
	p := Plan{Rules: []Rule{{`blocks\.0\.attn\.qkv`, mid}, {`blocks\.\d+\..*`, lora}}}
	got, err := p.Resolve(layers)
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, a := range got {
		desc = append(desc, a.Layer.Name+":"+a.Config.Method)
	}
	want := []string{"blocks.0.attn.qkv:mid", "blocks.0.mlp.fc1:lora", "blocks.1.attn.qkv:lora"}
	if !slices.Equal(desc, want) {
		t.Errorf("Resolve = %v, want %v", desc, want)
	}
	// Exact names work even though '.' is a regexp metacharacter.
	if got, err := NewPlan(lora, "head").Resolve(layers); err != nil || len(got) != 1 || got[0].Layer.Name != "head" {
		t.Errorf("exact target: %v, %v", got, err)
	}
	for _, bad := range []struct {
		plan Plan
		want string
	}{
		{NewPlan(lora, "blocks.0.attn.qvk"), `matches no layer`},
		{NewPlan(lora, "blocks.(0"), `neither a layer name nor a regular expression`},
		{NewPlan(Config{Method: "lorra", Rank: 2}, "head"), `unknown method "lorra"`},
		{NewPlan(Config{Method: MethodPiSSA}, "head"), `rank 0`},
		{NewPlan(lora, ""), `empty target`},
	} {
		if _, err := bad.plan.Resolve(layers); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("plan %+v: error %v, want one containing %q", bad.plan, err, bad.want)
		}
	}
}

func TestAttachErrors(t *testing.T) {
	lora := Config{Method: MethodLoRA, Rank: 2}
	// No variables.
	if _, err := Attach(context.Background(), mlctx.New(), NewPlan(lora, "enc"), toyLayers, Options{}); err == nil || !strings.Contains(err.Error(), `layer "enc" has no variable /enc/weight`) {
		t.Errorf("missing weight: %v", err)
	}
	// Wrong shape.
	ctx := newToy(t, dtypes.Float32, 1)
	bad := slices.Clone(toyLayers)
	bad[0].In = 10
	if _, err := Attach(context.Background(), ctx, NewPlan(lora, "enc"), bad, Options{}); err == nil || !strings.Contains(err.Error(), `expected [12 10]`) {
		t.Errorf("wrong shape: %v", err)
	}
	// Window too large for the layer.
	if _, err := Attach(context.Background(), ctx, NewPlan(Config{Method: MethodWindow, Rank: 3,
		Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: 7}}, "enc"), toyLayers, Options{}); err == nil || !strings.Contains(err.Error(), `"enc"`) {
		t.Errorf("window beyond k: %v", err)
	}
	// Twice.
	if _, err := Attach(context.Background(), ctx, NewPlan(lora, "enc"), toyLayers, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(context.Background(), ctx, NewPlan(lora, "enc"), toyLayers, Options{}); err == nil || !strings.Contains(err.Error(), "already has an adapter") {
		t.Errorf("attach twice: %v", err)
	}
}

// TestKeepSVD: with KeepSVD every adapted layer keeps an exact thin SVD of W₀.
func TestKeepSVD(t *testing.T) {
	for _, c := range []Config{{Method: MethodLoRA, Rank: 2}, {Method: MethodFull}, {Method: MethodDoRA, Rank: 2}} {
		ctx := newToy(t, dtypes.Float64, 2)
		a, err := Attach(context.Background(), ctx, NewPlan(c, backboneTargets...), toyLayers, Options{KeepSVD: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range a.Layers() {
			if l.SVD == nil || l.SVD.Len() != min(l.Out, l.In) {
				t.Fatalf("%s %s: SVD not kept", c.Method, l.Name)
			}
			f := l.SVD
			q := f.Len()
			for i := 0; i < l.Out; i++ {
				for j := 0; j < l.In; j++ {
					var s float64
					for k := 0; k < q; k++ {
						s += f.U.Data[i*q+k] * f.S[k] * f.V.Data[j*q+k]
					}
					if math.Abs(s-l.Pretrained.At(i, j)) > 1e-12 {
						t.Fatalf("%s: U·S·Vᵀ ≠ W₀ at (%d,%d)", l.Name, i, j)
					}
				}
			}
		}
	}
}
