// Package adamw is prism's AdamW optimizer: GoMLX's Adam with decoupled
// weight decay and clipping of the gradients' global norm, with a fused,
// in-place update on the pure-Go backend.
//
// One step, per trained variable θ with gradient g, step t (1-based):
//
//	s  = min(1, clip/(‖g‖₂+1e-6))          global norm over all variables (clip > 0)
//	g ← s·g
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	θ ← θ − lr·( m/(1−β1ᵗ) / (√(v/(1−β2ᵗ)) + ε) + λ·θ )
//
// (λ the weight decay; the maths of GoMLX's optimizers.Adam with
// WeightDecay, and of PyTorch's AdamW.)
//
// On XLA the whole update is graph code (GoMLX's Adam, which XLA fuses). On
// the pure-Go backend (simplego), which runs every graph op as a separate
// pass over memory with a fresh buffer (≈17 per variable for Adam), the step
// graph instead outputs the gradients and [Optimizer.Apply] updates θ, m and v
// in place in one pass per variable, on all cores. Both keep the same state
// in the context under GoMLX's names — m and v as
// /AdamOptimizer<scope>/<name>_1st_moment and _2nd_moment, the step count as
// /AdamOptimizer/global_step, plus /global_step and
// /optimizers/learning_rate — so checkpoints are interchangeable.
package adamw

import (
	"fmt"
	"math"
	"sort"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gopjrt/dtypes"
)

// Config holds the hyper-parameters. Zero Beta1, Beta2 and Epsilon mean
// 0.9, 0.999 and 1e-8.
type Config struct {
	// LearningRate is used when a step is given no learning rate.
	LearningRate float64
	// WeightDecay is λ (decoupled: θ ← θ − lr·λ·θ); 0 is plain Adam.
	WeightDecay           float64
	Beta1, Beta2, Epsilon float64
	// Clip bounds the global gradient norm: g ← g·min(1, Clip/(‖g‖₂+1e-6)),
	// ‖g‖₂ over all trained variables (PyTorch's clip_grad_norm_); 0 disables it.
	Clip float64
	// InGraph keeps the whole update in the graph (GoMLX's Adam) on every
	// backend; otherwise the pure-Go backend uses the fused update.
	InGraph bool
}

func (c Config) withDefaults() Config {
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Epsilon == 0 {
		c.Epsilon = 1e-8
	}
	return c
}

// Optimizer is one AdamW optimizer for one step graph. Use it as
//
//	opt := adamw.New(backend, cfg)
//	exec := mlctx.NewExec(backend, ctx, func(ctx *mlctx.Context, x, y, lr *Node) []*Node {
//		loss := …
//		return append([]*Node{loss}, opt.UpdateGraph(ctx, loss, lr)...)
//	})
//	out, err := exec.Exec(x, y, lrTensor)
//	err = opt.Apply(out[1:], lr)   // finalizes out[1:]
//
// UpdateGraph returns no nodes when the update is in the graph, and Apply
// then does nothing.
type Optimizer struct {
	cfg     Config
	backend backends.Backend
	fused   bool

	// Set by UpdateGraph (the latest graph built): the root context and the
	// trained variables in the order of their gradients, with their names.
	ctx   *mlctx.Context
	vars  []*mlctx.Variable
	names []string

	chunks []chunk // scratch of Apply
}

// New returns an optimizer for steps run on backend b.
func New(b backends.Backend, cfg Config) *Optimizer {
	_, simple := b.(*simplego.Backend)
	return &Optimizer{cfg: cfg.withDefaults(), backend: b, fused: simple && !cfg.InGraph}
}

// Fused reports whether the update runs outside the graph ([Optimizer.Apply]).
func (o *Optimizer) Fused() bool { return o.fused }

// adamScope is GoMLX's scope of Adam's state.
const adamScope = optimizers.AdamDefaultScope

// UpdateGraph differentiates the scalar loss with respect to ctx's trainable
// variables that the graph uses and either builds the whole update (GoMLX's
// Adam; returns nil) or returns the nodes the step must output for Apply
// (the gradients, unclipped). lr is the step's learning rate (a scalar; nil
// keeps Config.LearningRate).
func (o *Optimizer) UpdateGraph(ctx *mlctx.Context, loss, lr *Node) []*Node {
	g := loss.Graph()
	root := ctx.InAbsPath(mlctx.RootScope)
	var vars []*mlctx.Variable
	var names []string
	// The variables BuildTrainableVariablesGradientsGraph differentiates, in its order.
	ctx.EnumerateVariables(func(v *mlctx.Variable) {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
			names = append(names, v.ScopeAndName())
		}
	})
	grads := ctx.BuildTrainableVariablesGradientsGraph(loss)
	if len(grads) != len(vars) {
		panic(fmt.Sprintf("adamw: %d gradients for %d trainable variables", len(grads), len(vars)))
	}
	dtype := loss.DType()
	if o.fused && fusable(vars, dtype) {
		o.ctx, o.vars, o.names = root, vars, names
		return grads
	}
	o.ctx, o.vars, o.names = nil, nil, nil
	grads = ClipGlobalNorm(grads, names, o.cfg.Clip)
	if lr != nil {
		optimizers.LearningRateVar(root, dtype, o.cfg.LearningRate).SetValueGraph(ConvertDType(lr, dtype))
	}
	opt := optimizers.Adam().LearningRate(o.cfg.LearningRate).Betas(o.cfg.Beta1, o.cfg.Beta2).
		Epsilon(o.cfg.Epsilon).WeightDecay(o.cfg.WeightDecay).Done().(interface {
		UpdateGraphWithGradients(ctx *mlctx.Context, grads []*Node, lossDType dtypes.DType)
	})
	opt.UpdateGraphWithGradients(root, grads, dtype)
	return nil
}

// fusable reports whether the fused update handles every variable: float32
// or float64, of the loss's dtype (GoMLX's Adam computes in that dtype).
func fusable(vars []*mlctx.Variable, dtype dtypes.DType) bool {
	if dtype != dtypes.Float32 && dtype != dtypes.Float64 {
		return false
	}
	for _, v := range vars {
		if v.Shape().DType != dtype {
			return false
		}
	}
	return true
}

// ClipGlobalNorm scales grads by min(1, clip/(‖g‖₂+1e-6)), ‖g‖₂ over all of
// them (PyTorch's clip_grad_norm_); clip ≤ 0 returns grads. The squares are
// summed in the order of names (the variables' names), so the result does not
// depend on the order in which the context holds its variables.
func ClipGlobalNorm(grads []*Node, names []string, clip float64) []*Node {
	if clip <= 0 || len(grads) == 0 {
		return grads
	}
	var sum *Node
	for _, i := range byName(names) {
		s := ReduceAllSum(Square(grads[i]))
		if sum == nil {
			sum = s
		} else {
			sum = Add(sum, s)
		}
	}
	norm := Sqrt(sum)
	factor := Min(OnesLike(norm), Div(Scalar(norm.Graph(), norm.DType(), clip), AddScalar(norm, 1e-6)))
	out := make([]*Node, len(grads))
	for i, g := range grads {
		out[i] = Mul(g, ConvertDType(factor, g.DType()))
	}
	return out
}

// byName is the permutation that sorts names.
func byName(names []string) []int {
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return names[order[a]] < names[order[b]] })
	return order
}

// Apply performs the fused update of the step whose extra outputs (those
// UpdateGraph returned, in order) are grads, with learning rate lr, and
// finalizes grads. It does nothing when the update is in the graph.
func (o *Optimizer) Apply(grads []*tensors.Tensor, lr float64) error {
	if len(grads) == 0 && o.vars == nil {
		return nil
	}
	defer func() {
		for _, t := range grads {
			_ = t.FinalizeAll()
		}
	}()
	if len(grads) != len(o.vars) {
		return fmt.Errorf("adamw: %d gradients for %d variables", len(grads), len(o.vars))
	}
	st, err := o.state()
	if err != nil {
		return err
	}
	step := st.count() + 1
	c := newCoefficients(o.cfg, lr, step)
	dtype := o.vars[0].Shape().DType
	if dtype == dtypes.Float32 {
		err = o.update32(st, grads, c)
	} else {
		err = o.update64(st, grads, c)
	}
	if err != nil {
		return err
	}
	st.setCount(step, dtype, lr)
	return nil
}

// coefficients are the scalars of one fused step:
//
//	θ ← θ − (lrDebiased·m) / (√(debias2·v) + ε) − lrDecay·θ
//
// lrDebiased = lr/(1−β1ᵗ), debias2 = 1/(1−β2ᵗ), lrDecay = lr·λ; clip = s is
// the gradients' scale (1 without clipping, set by Apply).
type coefficients struct {
	clip, beta1, beta2, lrDebiased, debias2, eps, lrDecay float64
}

func newCoefficients(cfg Config, lr float64, step int64) coefficients {
	t := float64(step)
	return coefficients{
		clip: 1, beta1: cfg.Beta1, beta2: cfg.Beta2,
		lrDebiased: lr / (1 - math.Pow(cfg.Beta1, t)),
		debias2:    1 / (1 - math.Pow(cfg.Beta2, t)),
		eps:        cfg.Epsilon,
		lrDecay:    lr * cfg.WeightDecay,
	}
}
