// Package synthetic is a small, real, deterministic run kind: component-window
// fine-tuning of one linear layer on a synthetic regression pair, in pure Go.
// It exists so the experiment machinery (specs, runner, store, Slurm,
// figures) is exercised end to end by genuine work that takes milliseconds,
// and as a worked example of a run kind.
//
// The model is y = W·x with W: m×n. "Pretraining" builds W₀ = U·diag(S)·Vᵀ
// with random orthonormal U, V and a decaying spectrum S_i = exp(−decay·i)
// (task A: reproduce W₀). Task B asks for W_B = W₀ + Δ with Δ a random rank-q
// matrix of strength `shift` × S₀, seeded by the task name. Fine-tuning
// minimises ½‖W·x − W_B·x‖² over N_B samples x ~ N(0, I) with Adam, for the
// configured epochs and learning rate, training:
//
//	full                  W itself
//	lora                  W = W₀ + (α/r)·B·A, A ~ U(−1/√n, 1/√n), B = 0
//	pissa|milora|mid|window  W = W_res + (α/r)·B·A from the SVD window
//	                      [s, s+r): B = U_w·diag(√(S_w/scale)), A = diag(√(S_w/scale))·V_wᵀ,
//	                      W_res = W₀ − scale·B·A
//
// Metrics (percent scales like the real kind's): b_acc = 100·(1 − E_B/E_B0),
// the share of task B's error removed (E = mean squared error on held-out
// samples, E_B0 the base model's); a run whose task-B loss rises above
// 1000·E_B0 fails as diverged; a_acc_before = 100; a_acc_after =
// 100·(1 − ‖(W−W₀)x‖²/‖W₀x‖²) on held-out samples, floored at 0;
// forgetting = a_acc_before − a_acc_after. Curves per epoch: train_loss,
// b_loss, a_loss.
//
// A task sequence fine-tunes task after task, merging the adapter into W and
// taking the next window from the merged matrix's SVD.
//
// Parameters (all optional): model.params m, n (default 24), decay (0.15);
// finetune.params samples (256), batch (32), shift (0.5), rank_b (2),
// sleep_ms (per epoch, for tests of the runner).
package synthetic

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/internal/faultpoint"
)

// Name is the run kind's name.
const Name = "synthetic"

// Kind is the run kind, ready to register.
var Kind = experiment.Kind{
	Name:     Name,
	Run:      Run,
	Validate: Validate,
	Threads:  1,
	Doc:      "component-window fine-tuning of one linear layer on a synthetic regression pair (pure Go, milliseconds)",
}

var pretrainBuilds atomic.Int64

// PretrainBuilds counts how often this process built a base model (the rest
// came from the shared cache).
func PretrainBuilds() int64 { return pretrainBuilds.Load() }

type params struct {
	m, n     int
	decay    float64
	samples  int
	batch    int
	shift    float64
	rankB    int
	sleep    time.Duration
	sequence []string
}

func intParam(p map[string]any, key string, def int, field string) (int, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	x, isNum := v.(float64)
	if !isNum || x != math.Trunc(x) || x < 1 {
		return 0, &experiment.FieldError{Field: field + "." + key, Msg: fmt.Sprintf("expected a positive integer, got %v", v)}
	}
	return int(x), nil
}

func floatParam(p map[string]any, key string, def float64, field string) (float64, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	x, isNum := v.(float64)
	if !isNum || x < 0 {
		return 0, &experiment.FieldError{Field: field + "." + key, Msg: fmt.Sprintf("expected a number ≥ 0, got %v", v)}
	}
	return x, nil
}

func checkKeys(p map[string]any, field string, allowed ...string) error {
	for k := range p {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return &experiment.FieldError{Field: field + "." + k, Msg: fmt.Sprintf("unknown parameter of the synthetic kind (expected: %v)", allowed)}
		}
	}
	return nil
}

func parse(cfg experiment.RunConfig) (params, error) {
	var p params
	var err error
	if err = checkKeys(cfg.Model.Params, "model.params", "m", "n", "decay"); err != nil {
		return p, err
	}
	if err = checkKeys(cfg.Finetune.Params, "finetune.params", "samples", "batch", "shift", "rank_b", "sleep_ms"); err != nil {
		return p, err
	}
	if p.m, err = intParam(cfg.Model.Params, "m", 24, "model.params"); err != nil {
		return p, err
	}
	if p.n, err = intParam(cfg.Model.Params, "n", 24, "model.params"); err != nil {
		return p, err
	}
	if p.decay, err = floatParam(cfg.Model.Params, "decay", 0.15, "model.params"); err != nil {
		return p, err
	}
	if p.samples, err = intParam(cfg.Finetune.Params, "samples", 256, "finetune.params"); err != nil {
		return p, err
	}
	if p.batch, err = intParam(cfg.Finetune.Params, "batch", 32, "finetune.params"); err != nil {
		return p, err
	}
	if p.shift, err = floatParam(cfg.Finetune.Params, "shift", 0.5, "finetune.params"); err != nil {
		return p, err
	}
	if p.rankB, err = intParam(cfg.Finetune.Params, "rank_b", 2, "finetune.params"); err != nil {
		return p, err
	}
	ms, err := floatParam(cfg.Finetune.Params, "sleep_ms", 0, "finetune.params")
	if err != nil {
		return p, err
	}
	p.sleep = time.Duration(ms * float64(time.Millisecond))
	p.sequence = cfg.Finetune.Tasks
	k := min(p.m, p.n)
	switch cfg.Method {
	case experiment.MethodFull, experiment.MethodLoRA, experiment.MethodPiSSA, experiment.MethodMiLoRA,
		experiment.MethodMid, experiment.MethodWindow:
	default:
		return p, &experiment.FieldError{Field: "grid.methods", Msg: fmt.Sprintf("the synthetic kind implements full, lora, pissa, milora, mid and window, not %q", cfg.Method)}
	}
	if cfg.Rank > k {
		return p, &experiment.FieldError{Field: "grid.ranks", Msg: fmt.Sprintf("rank %d exceeds min(m, n) = %d", cfg.Rank, k)}
	}
	if w := cfg.Window; w != nil && w.Preset == "start" && w.Start+cfg.Rank > k {
		return p, &experiment.FieldError{Field: "grid.window_starts", Msg: fmt.Sprintf("window start %d with rank %d runs past k = %d components", w.Start, cfg.Rank, k)}
	}
	return p, nil
}

// Validate checks a configuration before the sweep starts.
func Validate(cfg experiment.RunConfig) error {
	_, err := parse(cfg)
	return err
}

// base is the pretrained model and its SVD, shared between runs.
type base struct {
	w0      *mat.Dense // m×n
	xA      *mat.Dense // n×N held-out task-A inputs
	yA      *mat.Dense // m×N = W₀·xA
	m, n, k int
}

func seeded(parts ...any) *rand.Rand {
	h := fnv.New64a()
	for _, p := range parts {
		fmt.Fprint(h, p, "\x00")
	}
	s := h.Sum64()
	return rand.New(rand.NewPCG(s, s^0x9E3779B97F4A7C15))
}

// orthonormal returns an r×c matrix (r ≥ c) with orthonormal columns (QR of a
// Gaussian matrix).
func orthonormal(rng *rand.Rand, r, c int) *mat.Dense {
	g := mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	return mat.DenseCopyOf(q.Slice(0, r, 0, c))
}

func gaussian(rng *rand.Rand, r, c int) *mat.Dense {
	d := mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			d.Set(i, j, rng.NormFloat64())
		}
	}
	return d
}

func buildBase(cfg experiment.RunConfig, p params) *base {
	pretrainBuilds.Add(1)
	var seed uint64
	task := "synthetic-a"
	if cfg.Pretrain != nil {
		seed = cfg.Pretrain.Seed
		if cfg.Pretrain.Task != "" {
			task = cfg.Pretrain.Task
		}
	}
	rng := seeded("base", task, seed, p.m, p.n, p.decay)
	k := min(p.m, p.n)
	u := orthonormal(rng, p.m, k)
	v := orthonormal(rng, p.n, k)
	s := make([]float64, k)
	for i := range s {
		s[i] = math.Exp(-p.decay * float64(i))
	}
	var us mat.Dense
	us.Mul(u, mat.NewDiagDense(k, s))
	w0 := mat.NewDense(p.m, p.n, nil)
	w0.Mul(&us, v.T())
	xA := gaussian(rng, p.n, 512)
	yA := mat.NewDense(p.m, 512, nil)
	yA.Mul(w0, xA)
	return &base{w0: w0, xA: xA, yA: yA, m: p.m, n: p.n, k: k}
}

// Run executes one configuration.
func Run(ctx context.Context, cfg experiment.RunConfig, prog experiment.Progress) (experiment.Result, error) {
	p, err := parse(cfg)
	if err != nil {
		return experiment.Result{}, err
	}
	v, err := experiment.SharedCache(ctx).Do(ctx, cfg.PretrainKey(), func(context.Context) (any, error) {
		return buildBase(cfg, p), nil
	})
	if err != nil {
		return experiment.Result{}, err
	}
	b := v.(*base)
	res := experiment.Result{Metrics: map[string]float64{}, Curves: map[string][]experiment.CurvePoint{}}
	w := mat.DenseCopyOf(b.w0)
	total := cfg.Epochs * len(p.sequence)
	done := 0
	var trainable int
	for ti, task := range p.sequence {
		var bAcc float64
		w, bAcc, trainable, err = finetune(ctx, cfg, p, b, w, task, ti, &res, prog, &done, total)
		if err != nil {
			return experiment.Result{}, err
		}
		if len(p.sequence) > 1 {
			res.Metrics["b_acc_"+task] = bAcc
		}
		res.Metrics[experiment.MetricTaskBAcc] = bAcc
	}
	aAfter := taskAAcc(b, w)
	res.Metrics[experiment.MetricTaskAAccBefore] = 100
	res.Metrics[experiment.MetricTaskAAccAfter] = aAfter
	res.Metrics[experiment.MetricForgetting] = 100 - aAfter
	res.Metrics[experiment.MetricTrainableParams] = float64(trainable)
	// Analysis summary: change of the merged weight along the base's own
	// singular directions, diagonal (ΔM_ii) vs off-diagonal energy (DESIGN §2).
	var svd mat.SVD
	svd.Factorize(b.w0, mat.SVDThin)
	var u, vv mat.Dense
	svd.UTo(&u)
	svd.VTo(&vv)
	var mm, tmp mat.Dense
	tmp.Mul(u.T(), w)
	mm.Mul(&tmp, &vv)
	sv := svd.Values(nil)
	var diag, off float64
	for i := 0; i < b.k; i++ {
		for j := 0; j < b.k; j++ {
			d := mm.At(i, j)
			if i == j {
				d -= sv[i]
				diag += d * d
			} else {
				off += d * d
			}
		}
	}
	res.Summaries = append(res.Summaries,
		experiment.Summary{Scope: "layer", Key: "diag_norm", Value: math.Sqrt(diag)},
		experiment.Summary{Scope: "layer", Key: "off_norm", Value: math.Sqrt(off)})
	return res, nil
}

// taskAAcc is 100·(1 − ‖(W−W₀)x‖²/‖W₀x‖²) over the held-out task-A inputs,
// floored at 0.
func taskAAcc(b *base, w *mat.Dense) float64 {
	var y mat.Dense
	y.Mul(w, b.xA)
	var diff mat.Dense
	diff.Sub(&y, b.yA)
	e := mat.Norm(&diff, 2)
	e0 := mat.Norm(b.yA, 2)
	return math.Max(0, 100*(1-(e*e)/(e0*e0)))
}

// finetune trains on one task from w and returns the merged weights, the
// task-B accuracy and the number of trainable parameters.
func finetune(ctx context.Context, cfg experiment.RunConfig, p params, b *base, w *mat.Dense, task string, ti int,
	res *experiment.Result, prog experiment.Progress, done *int, total int) (*mat.Dense, float64, int, error) {
	m, n, k := b.m, b.n, b.k
	rng := seeded("task", task, p.m, p.n, p.rankB, p.shift)
	// Δ = shift·S₀·Σ_j g_j·a_j·b_jᵀ with random unit a_j, b_j.
	delta := mat.NewDense(m, n, nil)
	ua := orthonormal(rng, m, p.rankB)
	vb := orthonormal(rng, n, p.rankB)
	for j := 0; j < p.rankB; j++ {
		g := p.shift * (1 + 0.5*rng.Float64())
		var outer mat.Dense
		outer.Outer(g, ua.ColView(j), vb.ColView(j))
		delta.Add(delta, &outer)
	}
	target := mat.NewDense(m, n, nil)
	target.Add(b.w0, delta)
	if ti > 0 {
		// Later tasks shift from the current model, not from W₀.
		target.Add(w, delta)
	}
	xTrain := gaussian(rng, n, p.samples)
	xTest := gaussian(rng, n, 512)
	var yTrain, yTest mat.Dense
	yTrain.Mul(target, xTrain)
	yTest.Mul(target, xTest)
	mse := func(wm mat.Matrix, x, y *mat.Dense) float64 {
		var pred mat.Dense
		pred.Mul(wm, x)
		pred.Sub(&pred, y)
		f := mat.Norm(&pred, 2)
		return f * f / float64(x.RawMatrix().Cols)
	}
	bLoss0 := mse(w, xTest, &yTest)

	// Parameters: full → W; adapters → A (r×n), B (m×r) on top of Wres.
	run := seeded("init", cfg.Seed, task)
	var A, B, wres *mat.Dense
	r := cfg.Rank
	scale := 1.0
	if r > 0 {
		scale = cfg.Alpha / float64(r)
		if cfg.RSLoRA {
			scale = cfg.Alpha / math.Sqrt(float64(r))
		}
	}
	switch cfg.Method {
	case experiment.MethodFull:
	case experiment.MethodLoRA:
		A = mat.NewDense(r, n, nil)
		bound := 1 / math.Sqrt(float64(n))
		for i := 0; i < r; i++ {
			for j := 0; j < n; j++ {
				A.Set(i, j, (2*run.Float64()-1)*bound)
			}
		}
		B = mat.NewDense(m, r, nil)
		wres = mat.DenseCopyOf(w)
	default:
		var s int
		switch cfg.Window.Preset {
		case "pissa":
			s = 0
		case "milora":
			s = k - r
		case "mid":
			s = (k - r) / 2
		case "start":
			s = cfg.Window.Start
		case "fraction":
			s = int(math.Round(cfg.Window.Fraction * float64(k-r)))
		}
		var svd mat.SVD
		if !svd.Factorize(w, mat.SVDThin) {
			return nil, 0, 0, errors.New("SVD of the base weight failed")
		}
		var u, v mat.Dense
		svd.UTo(&u)
		svd.VTo(&v)
		sv := svd.Values(nil)
		A = mat.NewDense(r, n, nil)
		B = mat.NewDense(m, r, nil)
		for c := 0; c < r; c++ {
			g := math.Sqrt(sv[s+c] / scale)
			for i := 0; i < m; i++ {
				B.Set(i, c, u.At(i, s+c)*g)
			}
			for j := 0; j < n; j++ {
				A.Set(c, j, v.At(j, s+c)*g)
			}
		}
		var ba mat.Dense
		ba.Mul(B, A)
		ba.Scale(scale, &ba)
		wres = mat.NewDense(m, n, nil)
		wres.Sub(w, &ba)
	}
	current := func() *mat.Dense {
		if A == nil {
			return w
		}
		var ba mat.Dense
		ba.Mul(B, A)
		out := mat.NewDense(m, n, nil)
		out.Scale(scale, &ba)
		out.Add(out, wres)
		return out
	}
	var params []*mat.Dense
	if A == nil {
		w = mat.DenseCopyOf(w)
		params = []*mat.Dense{w}
	} else {
		params = []*mat.Dense{A, B}
	}
	trainable := 0
	opt := make([]*adam, len(params))
	for i, q := range params {
		rr, cc := q.Dims()
		trainable += rr * cc
		opt[i] = newAdam(rr, cc)
	}
	order := make([]int, p.samples)
	for i := range order {
		order[i] = i
	}
	step := 0
	for ep := 1; ep <= cfg.Epochs; ep++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, 0, err
		}
		run.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var epochLoss float64
		for start := 0; start < p.samples; start += p.batch {
			end := min(start+p.batch, p.samples)
			bs := end - start
			xb := mat.NewDense(n, bs, nil)
			yb := mat.NewDense(m, bs, nil)
			for c := 0; c < bs; c++ {
				col := order[start+c]
				for i := 0; i < n; i++ {
					xb.Set(i, c, xTrain.At(i, col))
				}
				for i := 0; i < m; i++ {
					yb.Set(i, c, yTrain.At(i, col))
				}
			}
			wc := current()
			var resid mat.Dense
			resid.Mul(wc, xb)
			resid.Sub(&resid, yb)
			fr := mat.Norm(&resid, 2)
			epochLoss += fr * fr / 2
			// G = dL/dW = resid·xbᵀ / bs  (m×n)
			var g mat.Dense
			g.Mul(&resid, xb.T())
			g.Scale(1/float64(bs), &g)
			step++
			if A == nil {
				opt[0].step(w, &g, cfg.LearningRate, step)
			} else {
				var gA, gB mat.Dense
				gB.Mul(&g, A.T()) // dL/dB = scale·G·Aᵀ
				gB.Scale(scale, &gB)
				gA.Mul(B.T(), &g) // dL/dA = scale·Bᵀ·G
				gA.Scale(scale, &gA)
				opt[0].step(A, &gA, cfg.LearningRate, step)
				opt[1].step(B, &gB, cfg.LearningRate, step)
			}
		}
		epochLoss /= float64(p.samples)
		wc := current()
		bLoss := mse(wc, xTest, &yTest)
		aLoss := mse(wc, b.xA, b.yA)
		if math.IsNaN(epochLoss) || math.IsInf(epochLoss, 0) || math.IsNaN(bLoss) || bLoss > 1e3*bLoss0 {
			return nil, 0, 0, fmt.Errorf("diverged on task %s at epoch %d (train loss %g) with learning rate %g", task, ep, epochLoss, cfg.LearningRate)
		}
		x := float64(ti*cfg.Epochs + ep)
		res.Curves["train_loss"] = append(res.Curves["train_loss"], experiment.CurvePoint{Epoch: x, Value: epochLoss})
		res.Curves["b_loss"] = append(res.Curves["b_loss"], experiment.CurvePoint{Epoch: x, Value: bLoss})
		res.Curves["a_loss"] = append(res.Curves["a_loss"], experiment.CurvePoint{Epoch: x, Value: aLoss})
		*done++
		prog.Report(*done, total, fmt.Sprintf("task %s epoch %d/%d loss %.4g", task, ep, cfg.Epochs, epochLoss))
		faultpoint.Hit("synthetic.epoch")
		if p.sleep > 0 {
			select {
			case <-time.After(p.sleep):
			case <-ctx.Done():
				return nil, 0, 0, ctx.Err()
			}
		}
	}
	merged := current()
	bAcc := math.Max(0, 100*(1-mse(merged, xTest, &yTest)/bLoss0))
	return merged, bAcc, trainable, nil
}

// adam is the Adam optimiser state of one parameter matrix (β₁ = 0.9,
// β₂ = 0.999, ε = 1e-8).
type adam struct{ m1, m2 *mat.Dense }

func newAdam(r, c int) *adam { return &adam{m1: mat.NewDense(r, c, nil), m2: mat.NewDense(r, c, nil)} }

func (a *adam) step(p, g *mat.Dense, lr float64, t int) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	c1 := 1 - math.Pow(b1, float64(t))
	c2 := 1 - math.Pow(b2, float64(t))
	pr, gr := p.RawMatrix(), g.RawMatrix()
	m1, m2 := a.m1.RawMatrix(), a.m2.RawMatrix()
	for i := 0; i < pr.Rows; i++ {
		for j := 0; j < pr.Cols; j++ {
			pi, gi := i*pr.Stride+j, i*gr.Stride+j
			mi, vi := i*m1.Stride+j, i*m2.Stride+j
			gv := gr.Data[gi]
			m1.Data[mi] = b1*m1.Data[mi] + (1-b1)*gv
			m2.Data[vi] = b2*m2.Data[vi] + (1-b2)*gv*gv
			pr.Data[pi] -= lr * (m1.Data[mi] / c1) / (math.Sqrt(m2.Data[vi]/c2) + eps)
		}
	}
}
