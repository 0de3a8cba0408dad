package adamw_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/train/adamw"
)

// problem is a small regression: loss = mean((tanh(x·W + b)·u − y)²) with
// trainable W [in, hidden], b [hidden], u [hidden] and a frozen scale.
type problem struct {
	dtype dtypes.DType
	x, y  *tensors.Tensor
}

func newProblem(dtype dtypes.DType, seed uint64) problem {
	rng := rand.New(rand.NewPCG(seed, 1))
	const n, in = 16, 40
	x := make([]float64, n*in)
	y := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	for i := range y {
		y[i] = rng.NormFloat64()
	}
	return problem{dtype: dtype, x: tensorOf(dtype, x, n, in), y: tensorOf(dtype, y, n)}
}

func tensorOf(dtype dtypes.DType, vals []float64, dims ...int) *tensors.Tensor {
	if dtype == dtypes.Float32 {
		f := make([]float32, len(vals))
		for i, v := range vals {
			f[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	}
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), vals...), dims...)
}

// newContext holds the problem's variables with the same initial values for every seed.
func (p problem) newContext(seed uint64) *mlctx.Context {
	ctx := mlctx.New()
	rng := rand.New(rand.NewPCG(seed, 2))
	randoms := func(dims ...int) *tensors.Tensor {
		vals := make([]float64, shapes.Make(p.dtype, dims...).Size())
		for i := range vals {
			vals[i] = 0.3 * rng.NormFloat64()
		}
		return tensorOf(p.dtype, vals, dims...)
	}
	layer := ctx.In("model").In("layer")
	layer.VariableWithValue("W", randoms(40, 300)) // 12,000 elements: several parallel chunks
	layer.VariableWithValue("b", randoms(300))
	ctx.In("model").VariableWithValue("u", randoms(300))
	ctx.In("model").VariableWithValue("frozen", randoms(300)).SetTrainable(false)
	return ctx
}

func (p problem) loss(ctx *mlctx.Context, x, y *Node) *Node {
	g := x.Graph()
	m := ctx.In("model")
	w := m.In("layer").GetVariable("W").ValueGraph(g)
	b := m.In("layer").GetVariable("b").ValueGraph(g)
	u := m.GetVariable("u").ValueGraph(g)
	frozen := m.GetVariable("frozen").ValueGraph(g)
	h := Tanh(Add(Dot(x, w), InsertAxes(b, 0)))
	pred := ReduceSum(Mul(h, InsertAxes(Add(u, MulScalar(frozen, 0.1)), 0)), -1)
	return ReduceAllMean(Square(Sub(pred, y)))
}

// train runs steps of opt (learning rates lrs) and returns the context.
func train(t *testing.T, b backends.Backend, p problem, cfg adamw.Config, lrs []float64) *mlctx.Context {
	t.Helper()
	return trainOn(t, b, p, p.newContext(7), cfg, lrs)
}

// trainOn runs steps of opt on ctx, continuing from its state.
func trainOn(t *testing.T, b backends.Backend, p problem, ctx *mlctx.Context, cfg adamw.Config, lrs []float64) *mlctx.Context {
	t.Helper()
	opt := adamw.New(b, cfg)
	exec, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, x, y, lr *Node) []*Node {
		loss := p.loss(ctx, x, y)
		return append([]*Node{loss}, opt.UpdateGraph(ctx, loss, lr)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, lr := range lrs {
		out, err := exec.Exec(p.x, p.y, tensorOf(p.dtype, []float64{lr}))
		if err != nil {
			t.Fatal(err)
		}
		if err := opt.Apply(out[1:], lr); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

// values maps every variable of ctx to its values in float64.
func values(ctx *mlctx.Context) map[string][]float64 {
	out := map[string][]float64{}
	for v := range ctx.IterVariables() {
		var f []float64
		switch vals := v.MustValue().Value().(type) {
		case int64:
			f = []float64{float64(vals)}
		case float32:
			f = []float64{float64(vals)}
		case float64:
			f = []float64{vals}
		default:
			_ = v.MustValue().ConstFlatData(func(flat any) {
				switch x := flat.(type) {
				case []float32:
					for _, e := range x {
						f = append(f, float64(e))
					}
				case []float64:
					f = append(f, x...)
				}
			})
		}
		out[v.ScopeAndName()] = f
	}
	return out
}

// TestFusedMatchesGoMLXAdam trains the same problem with the fused update
// and with GoMLX's graph Adam (with weight decay, with and without
// clipping, varying learning rates) and compares every variable — the
// trained ones, the moments, the step counters and the learning rate —
// after several steps.
func TestFusedMatchesGoMLXAdam(t *testing.T) {
	b, err := backend.New("go")
	if err != nil {
		t.Fatal(err)
	}
	lrs := []float64{1e-2, 2e-2, 3e-2, 2e-2, 1e-2, 5e-3, 1e-2, 2e-2}
	for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		// Relative to the largest magnitude of each variable.
		tol := 5e-5
		if dtype == dtypes.Float64 {
			tol = 1e-12
		}
		for _, cfg := range []adamw.Config{
			{LearningRate: 1e-2, WeightDecay: 0.05},
			{LearningRate: 1e-2, WeightDecay: 0.05, Clip: 0.05}, // the norm is ≈ 1: clipping acts
			{LearningRate: 1e-2, Clip: 100},                     // clipping does not act
		} {
			t.Run(fmt.Sprintf("%s/wd=%g/clip=%g", dtype, cfg.WeightDecay, cfg.Clip), func(t *testing.T) {
				p := newProblem(dtype, 3)
				if !adamw.New(b, cfg).Fused() {
					t.Fatal("the pure-Go backend does not use the fused update")
				}
				inGraph := cfg
				inGraph.InGraph = true
				want := values(train(t, b, p, inGraph, lrs))
				got := values(train(t, b, p, cfg, lrs))
				start := values(p.newContext(7))
				if len(got) != len(want) {
					t.Fatalf("fused run has variables %v, GoMLX's Adam %v", keys(got), keys(want))
				}
				for name, w := range want {
					g, ok := got[name]
					if !ok || len(g) != len(w) {
						t.Fatalf("variable %s: fused %d values, GoMLX's Adam %d", name, len(g), len(w))
					}
					scale := 0.0
					for _, x := range w {
						scale = max(scale, math.Abs(x))
					}
					worst := 0.0
					for i := range w {
						worst = max(worst, math.Abs(g[i]-w[i])/scale)
					}
					if worst > tol {
						t.Errorf("variable %s: worst relative difference %.3g > %.3g", name, worst, tol)
					}
					if s, ok := start[name]; ok && name != "/model/frozen" && s[0] == w[0] {
						t.Errorf("variable %s did not change", name)
					}
				}
				if n := want["/AdamOptimizer/global_step"]; len(n) != 1 || n[0] != float64(len(lrs)) {
					t.Errorf("GoMLX's Adam step count %v, want %d", n, len(lrs))
				}
				if got["/optimizers/learning_rate"][0] != want["/optimizers/learning_rate"][0] {
					t.Errorf("learning rate %v, GoMLX's Adam %v", got["/optimizers/learning_rate"], want["/optimizers/learning_rate"])
				}
			})
		}
	}
}

func keys(m map[string][]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStateIsGoMLXs runs 4 fused steps and then 4 of GoMLX's graph Adam on
// the same context (the state a checkpoint stores), and the other way
// round, and compares with 8 steps of GoMLX's Adam: the fused update keeps
// Adam's state where and as GoMLX does.
func TestStateIsGoMLXs(t *testing.T) {
	b, err := backend.New("go")
	if err != nil {
		t.Fatal(err)
	}
	lrs := []float64{1e-2, 2e-2, 3e-2, 2e-2, 1e-2, 5e-3, 1e-2, 2e-2}
	p := newProblem(dtypes.Float64, 5)
	cfg := adamw.Config{LearningRate: 1e-2, WeightDecay: 0.05, Clip: 0.05}
	inGraph := cfg
	inGraph.InGraph = true
	want := values(train(t, b, p, inGraph, lrs))
	for _, order := range [][2]adamw.Config{{cfg, inGraph}, {inGraph, cfg}} {
		ctx := train(t, b, p, order[0], lrs[:4])
		compareValues(t, values(trainOn(t, b, p, ctx, order[1], lrs[4:])), want)
	}
}

func compareValues(t *testing.T, got, want map[string][]float64) {
	t.Helper()
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("variable %s: %d values, want %d", name, len(g), len(w))
		}
		for i := range w {
			if math.Abs(g[i]-w[i]) > 1e-12*(1+math.Abs(w[i])) {
				t.Fatalf("variable %s[%d]: %v after 4 + 4 steps, %v after 8 graph steps", name, i, g[i], w[i])
			}
		}
	}
}
