package adapter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/core/method/verify"
)

// LinearFunc computes the linear layer called name on x: [..., in] →
// [..., outDim]; ctx is the model's root scope and the layer's variables live
// in ctx.In(name). It is the type of core/models' injectable Linear.
type LinearFunc = func(ctx *mlctx.Context, name string, x *graph.Node, outDim int) *graph.Node

// LayerState is what Attach did to one layer, kept for merging, analysis and
// export. Matrices are float64 copies (m×n unless noted).
type LayerState struct {
	Name    string
	Out, In int // m, n
	Config  Config
	// Start is the resolved window start s (window methods, and external
	// methods whose components form one window; 0 otherwise).
	Start int
	// Components are the singular-component indices an external method
	// built the adapter from (method.Result.Components; nil otherwise).
	Components []int
	// Note is an external method's remark on this layer (e.g. "energy 0.90 at s=37").
	Note string
	// Scale is α/r or α/√r (adapter methods; 0 otherwise).
	Scale float64
	// DType is the variables' dtype (Float32 or Float64).
	DType dtypes.DType
	// HasBias reports whether the layer has a "bias" variable.
	HasBias bool
	// Pretrained is W₀, the weight before Attach.
	Pretrained lowrank.Matrix[float64]
	// InitA (r×n) and InitB (m×r) are the initial factors (adapter methods),
	// so W₀ = Wres + Scale·InitB·InitA and lowrank.ToLoRA can convert.
	InitA, InitB lowrank.Matrix[float64]
	// SVD of W₀ (the factors the window came from; for other methods only
	// with Options.KeepSVD): U m×q, S q, V n×q, q = k (full) or s+r
	// (randomized). Nil when not computed.
	SVD *lowrank.Factors[float64]
}

// TrainableParams is the number of values the method trains in this layer:
// r·(m+n) for the low-rank methods, plus m for DoRA's magnitude; m·n (+ m
// with a bias) for full fine-tuning; 0 for head-only.
func (l *LayerState) TrainableParams() int {
	m, n, r := l.Out, l.In, l.Config.Rank
	switch l.Config.Method {
	case MethodHead:
		return 0
	case MethodFull:
		if l.HasBias {
			return m*n + m
		}
		return m * n
	case MethodDoRA:
		return r*(m+n) + m
	}
	return r * (m + n)
}

// Window returns the layer's window [Start, Start+Rank) and whether it has one.
func (l *LayerState) Window() (start, rank int, ok bool) {
	if l.Config.IsExternal() && contiguous(l.Components) && len(l.Components) == l.Config.Rank {
		return l.Start, l.Config.Rank, true
	}
	if !l.Config.IsWindow() {
		return 0, 0, false
	}
	return l.Start, l.Config.Rank, true
}

// contiguous reports whether idx is s, s+1, …, s+len−1 (and not empty).
func contiguous(idx []int) bool {
	for i := range idx {
		if idx[i] != idx[0]+i {
			return false
		}
	}
	return len(idx) > 0
}

// Options tune Attach.
type Options struct {
	// KeepSVD computes and keeps the thin SVD of W₀ for every adapted layer,
	// also for methods that do not initialise from it (lora, olora, dora,
	// full, head), so the analysis has a basis for every method.
	KeepSVD bool
	// Workers bounds the layers decomposed at once (0: lowrank.DefaultWorkers()).
	Workers int
	// Progress, when set, is called after each layer is initialised.
	Progress func(done, total int, layer string)
}

// Adapted is a model's set of adapted layers, as attached to a context.
type Adapted struct {
	layers []*LayerState
	byName map[string]*LayerState
	// DoRA tunes the DoRA layers' graphs.
	DoRA DoRAOptions
}

// Layers returns the adapted layers in the model's order.
func (a *Adapted) Layers() []*LayerState { return a.layers }

// Layer returns the named adapted layer.
func (a *Adapted) Layer(name string) (*LayerState, bool) {
	l, ok := a.byName[name]
	return l, ok
}

// TrainableParams sums the layers' trainable parameter counts.
func (a *Adapted) TrainableParams() int {
	total := 0
	for _, l := range a.layers {
		total += l.TrainableParams()
	}
	return total
}

// Attach initialises the plan's adapters on the model whose variables live in
// ctx (the model's root scope; layer NAME in ctx.In(NAME), with its pretrained
// "weight" already set). For each layer the plan targets, in layers' order:
//
//   - adapter methods: A, B (and Wres) from core/lowrank — window methods
//     from the thin (or randomized) SVD of W, computed once and kept — then
//     "weight" ← Wres (frozen), "bias" frozen, "lora_A", "lora_B" created
//     trainable; DoRA also "lora_magnitude" = ‖W‖_row, trainable;
//   - full: "weight" and "bias" marked trainable;
//   - head: "weight" and "bias" marked frozen.
//
// Variables outside the targeted layers are not touched: the caller decides
// what else trains. Decompositions run in parallel (Options.Workers); goctx
// cancels them. Errors name the layer.
func Attach(goctx context.Context, ctx *mlctx.Context, plan Plan, layers []Layer, o Options) (*Adapted, error) {
	assignments, err := plan.Resolve(layers)
	if err != nil {
		return nil, err
	}
	states := make([]*LayerState, len(assignments))
	bases := make([]lowrank.Matrix[float64], len(assignments))
	mags := make([][]float64, len(assignments))
	for i, as := range assignments {
		st, err := readLayer(ctx, as)
		if err != nil {
			return nil, err
		}
		states[i] = st
	}

	// Decompose and initialise, Workers layers at a time.
	workers := o.Workers
	if workers <= 0 {
		workers = lowrank.DefaultWorkers()
	}
	workers = max(1, min(workers, len(states)))
	errs := make([]error, len(states))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := goctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				bases[i], mags[i], errs[i] = initLayer(goctx, states[i], o.KeepSVD)
				if errs[i] == nil && o.Progress != nil {
					mu.Lock()
					done++
					o.Progress(done, len(states), states[i].Name)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range states {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}

	// Variables, sequentially (the context is not safe for concurrent use).
	a := &Adapted{byName: map[string]*LayerState{}}
	for i, st := range states {
		if err := st.setVariables(ctx, bases[i], mags[i]); err != nil {
			return nil, err
		}
		a.layers = append(a.layers, st)
		a.byName[st.Name] = st
	}
	return a, nil
}

// readLayer checks the layer's variables and reads W₀.
func readLayer(ctx *mlctx.Context, as Assignment) (*LayerState, error) {
	name := as.Layer.Name
	w := variable(ctx, name, WeightName)
	if w == nil {
		return nil, fmt.Errorf("adapter: layer %q has no variable %s/%s: build or load the model before attaching adapters",
			name, ctx.In(name).Scope(), WeightName)
	}
	if v := variable(ctx, name, LoRAAName); v != nil {
		return nil, fmt.Errorf("adapter: layer %q already has an adapter (%s exists)", name, v.ScopeAndName())
	}
	dims := w.Shape().Dimensions
	if len(dims) != 2 || dims[0] != as.Layer.Out || dims[1] != as.Layer.In {
		return nil, fmt.Errorf("adapter: layer %q: weight has shape %s, expected [%d %d] (out×in)", name, w.Shape(), as.Layer.Out, as.Layer.In)
	}
	if dt := w.Shape().DType; dt != dtypes.Float32 && dt != dtypes.Float64 {
		return nil, fmt.Errorf("adapter: layer %q: weight dtype %s, want Float32 or Float64", name, dt)
	}
	w0, err := readMatrix(w)
	if err != nil {
		return nil, fmt.Errorf("adapter: layer %q: %w", name, err)
	}
	st := &LayerState{Name: name, Out: dims[0], In: dims[1], Config: as.Config, DType: w.Shape().DType, Pretrained: w0}
	if b := variable(ctx, name, BiasName); b != nil {
		if bd := b.Shape().Dimensions; len(bd) != 1 || bd[0] != st.Out {
			return nil, fmt.Errorf("adapter: layer %q: bias has shape %s, expected [%d]", name, b.Shape(), st.Out)
		}
		st.HasBias = true
	}
	if st.Config.IsAdapter() {
		st.Scale = st.Config.Scale()
	}
	return st, nil
}

// initLayer decomposes W₀ and initialises the adapter; it returns Wres and
// DoRA's magnitude (nil for other methods).
func initLayer(goctx context.Context, st *LayerState, keepSVD bool) (wres lowrank.Matrix[float64], mag []float64, err error) {
	c := st.Config
	if c.IsExternal() {
		wres, err = initExternal(goctx, st, keepSVD)
		return wres, nil, err
	}
	w0 := st.Pretrained
	lc := c.LowRank(st.Name)
	if c.IsWindow() || keepSVD {
		var f lowrank.Factors[float64]
		if c.IsWindow() && c.SVD == lowrank.SVDRandomized {
			s, err := lc.Window.Resolve(st.Name, st.Out, st.In, c.Rank)
			if err != nil {
				return wres, nil, err
			}
			f, err = lowrank.RandomizedSVD(w0, s+c.Rank, lowrank.RandomizedOptions{
				Algorithm: c.Randomized, NIter: c.NIter, Oversample: c.Oversample, Seed: lc.Seed})
			if err != nil {
				return wres, nil, fmt.Errorf("adapter: layer %q: %w", st.Name, err)
			}
		} else {
			f, err = lowrank.ThinSVD(w0)
			if err != nil {
				return wres, nil, fmt.Errorf("adapter: layer %q: %w", st.Name, err)
			}
		}
		st.SVD = &f
	}
	if !c.IsAdapter() {
		return wres, nil, nil
	}
	var ad lowrank.Adapter[float64]
	if c.IsWindow() {
		ad, err = lowrank.InitFromSVD(st.Name, w0, *st.SVD, lc)
	} else {
		ad, err = lowrank.Init(st.Name, w0, lc)
	}
	if err != nil {
		return wres, nil, err
	}
	st.Start, st.InitA, st.InitB = ad.Start, ad.A, ad.B
	if c.Method == MethodDoRA {
		mag = lowrank.DoRAMagnitude(ad)
	}
	return ad.Base, mag, nil
}

// initExternal asks the layer's external method for its adapter, in float64:
// the request carries W₀ (m×n), the rank, α, the scale and a seed mixed with
// the layer name, and — when the method needs it (or keepSVD) — W₀'s thin
// SVD, computed here once and kept for the analysis. The answer is checked
// (shapes, finiteness, component indices, and W₀ = Base + scale·B·A within
// 1e-12 unless the method declares it changes the function) before it is
// used; errors keep the method's own error (e.g. a plugin's *host.Error) in
// their chain. It returns Base, the frozen residual.
func initExternal(goctx context.Context, st *LayerState, keepSVD bool) (lowrank.Matrix[float64], error) {
	c := st.Config
	md := c.External.Metadata()
	w0 := st.Pretrained
	if md.NeedsSVD || keepSVD {
		f, err := lowrank.ThinSVD(w0)
		if err != nil {
			return lowrank.Matrix[float64]{}, fmt.Errorf("adapter: layer %q: %w", st.Name, err)
		}
		st.SVD = &f
	}
	alpha := c.Alpha
	if alpha == 0 {
		alpha = float64(c.Rank)
	}
	req := method.Request{
		Layer: st.Name, Weight: builtin.FromLowrank(w0), Rank: c.Rank, Alpha: alpha, RSLoRA: c.RSLoRA,
		Scale: st.Scale, Seed: layerSeed(c.Seed, st.Name), Hyper: c.Hyper,
	}
	if md.NeedsSVD {
		req.SVD = builtin.FromFactors(*st.SVD)
	}
	res, err := c.External.Init(goctx, req)
	if err != nil {
		return lowrank.Matrix[float64]{}, fmt.Errorf("adapter: layer %q: method %s: %w", st.Name, c.Method, err)
	}
	if err := verify.Result(req, res); err != nil {
		return lowrank.Matrix[float64]{}, fmt.Errorf("adapter: method %s: %w", c.Method, err)
	}
	a, errA := builtin.ToLowrank[float64](res.A)
	b, errB := builtin.ToLowrank[float64](res.B)
	base, errBase := builtin.ToLowrank[float64](res.Base)
	if err := errors.Join(errA, errB, errBase); err != nil {
		return lowrank.Matrix[float64]{}, fmt.Errorf("adapter: layer %q: method %s: %w", st.Name, c.Method, err)
	}
	st.InitA, st.InitB, st.Note = a, b, res.Note
	st.Components = append([]int(nil), res.Components...)
	if contiguous(st.Components) {
		st.Start = st.Components[0]
	}
	return base, nil
}

// setVariables writes the layer's adapter variables and trainability.
func (st *LayerState) setVariables(ctx *mlctx.Context, wres lowrank.Matrix[float64], mag []float64) error {
	m, n, r := st.Out, st.In, st.Config.Rank
	w := variable(ctx, st.Name, WeightName)
	b := variable(ctx, st.Name, BiasName)
	switch st.Config.Method {
	case MethodFull, MethodHead:
		trainable := st.Config.Method == MethodFull
		w.SetTrainable(trainable)
		if b != nil {
			b.SetTrainable(trainable)
		}
		return nil
	}
	if _, err := setVariable(ctx, st.Name, WeightName, newTensor(st.DType, wres.Data, m, n), false); err != nil {
		return err
	}
	if b != nil {
		b.SetTrainable(false)
	}
	if _, err := setVariable(ctx, st.Name, LoRAAName, newTensor(st.DType, st.InitA.Data, r, n), true); err != nil {
		return err
	}
	if _, err := setVariable(ctx, st.Name, LoRABName, newTensor(st.DType, st.InitB.Data, m, r), true); err != nil {
		return err
	}
	if st.Config.Method == MethodDoRA {
		if _, err := setVariable(ctx, st.Name, MagnitudeName, newTensor(st.DType, mag, m), true); err != nil {
			return err
		}
	}
	return nil
}

// Linear returns the models' Linear function with the adapters in place:
// adapted layers compute their method's layer from their variables; every
// other layer is computed by fallback (e.g. core/models' Dense, which also
// creates a new head's variables).
func (a *Adapted) Linear(fallback LinearFunc) LinearFunc {
	return func(ctx *mlctx.Context, name string, x *graph.Node, outDim int) *graph.Node {
		st, ok := a.byName[name]
		if !ok {
			return fallback(ctx, name, x, outDim)
		}
		if in := x.Shape().Dimensions[x.Rank()-1]; outDim != st.Out || in != st.In {
			panic(fmt.Sprintf("adapter: layer %q was attached as %d×%d (out×in), the model uses it as %d×%d", name, st.Out, st.In, outDim, in))
		}
		g := x.Graph()
		value := func(v string) *graph.Node {
			vr := variable(ctx, name, v)
			if vr == nil {
				panic(fmt.Sprintf("adapter: layer %q has no variable %s (was the adapter attached to this context?)", name, v))
			}
			return vr.ValueGraph(g)
		}
		var bias *graph.Node
		if st.HasBias {
			bias = value(BiasName)
		}
		w := value(WeightName)
		switch st.Config.Method {
		case MethodFull, MethodHead:
			return Dense(x, w, bias)
		case MethodDoRA:
			return DoRA(x, w, bias, value(LoRAAName), value(LoRABName), value(MagnitudeName), st.Scale, a.DoRA)
		}
		return LoRA(x, w, bias, value(LoRAAName), value(LoRABName), st.Scale)
	}
}
