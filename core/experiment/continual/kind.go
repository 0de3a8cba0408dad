// Package continual is the continual-learning experiment: a run kind that
// trains a task sequence with core/train's Continual (after each task the
// adapter is merged into the weights and the next task's window is taken
// from the merged weights' SVD), the accuracy matrix of each run read back
// from the results store with its metrics from core/analysis (average
// accuracy, backward transfer, forgetting per task), and the figures and
// table that compare methods.
//
// # Run kind "continual"
//
// A spec's pretrain.task is task 0 (pretrained from scratch, cached) and
// finetune.tasks are the tasks of stages 1, 2, …: catalog dataset names or
// derived tasks BASE/TRANSFORM (train.OpenTask: rot90, rot180, rot270,
// transpose, permute-SEED). Every grid point (method, window, rank, α,
// learning rate, epochs, seed) is one whole sequence.
//
//	model.name       vit | mlp
//	model.params     vit: patch, width, depth, heads, mlp_dim; mlp: hidden (list of widths)
//	pretrain.params  train_subset, test_subset, weight_decay, warmup, clip
//	finetune.params  train_subset, test_subset (every task's test split, task 0's too),
//	                 weight_decay, warmup, clip
//
// Unset values take core/train's defaults (DefaultPretrainHyper,
// DefaultFinetuneHyper; batch size 128 for the stages).
//
// Metrics of a run (accuracies in %, transfers in points):
//
//	acc_s{i}_t{j}    R[i][j], task j's test accuracy after stage i (j ≤ i)
//	acc              ACC = mean_j R[T−1][j], the average accuracy at the end
//	bwt              BWT = 1/(T−1)·Σ_{j<T−1} (R[T−1][j] − R[j][j])  (Lopez-Paz & Ranzato 2017)
//	mean_forgetting  mean over j < T−1 of f_j = max_{l<T−1} R[l][j] − R[T−1][j]  (Chaudhry et al. 2018)
//	forgetting_t{j}  f_j for each j < T−1
//	a_acc_before, a_acc_after, forgetting   task 0 before and after the sequence (the standard names)
//	b_acc            the last task's accuracy after its stage
//	trainable_params, wall_s, train_s
//
// Curves: acc_t{j} (task j's accuracy) and train_loss against the epoch
// counted over the whole sequence (stage i's epoch e is (i−1)·E + e).
package continual

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets"
)

// Name is the run kind's name.
const Name = "continual"

// Kind is the run kind with core/train's default options (the catalog's
// datasets, $PRISM_CACHE_DIR, $PRISM_BACKEND).
var Kind = NewKind(train.Options{})

// NewKind returns the run kind training with the given options (tests pass
// their own datasets and cache; Callbacks and Quiet are set per run).
func NewKind(o train.Options) experiment.Kind {
	return experiment.Kind{
		Name: Name,
		Run: func(ctx context.Context, cfg experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
			return run(ctx, cfg, p, o)
		},
		Validate: Validate,
		Threads:  runtime.NumCPU(),
		Doc:      "continual learning over a task sequence: merge after each task, next window from the merged weights' SVD (core/train)",
	}
}

// Metric names (see the package documentation).
const (
	MetricACC            = "acc"
	MetricBWT            = "bwt"
	MetricMeanForgetting = "mean_forgetting"
	MetricTrainSeconds   = "train_s"
)

// MatrixMetric names R[i][j] among a run's metrics: "acc_s{i}_t{j}".
func MatrixMetric(stage, task int) string { return fmt.Sprintf("acc_s%d_t%d", stage, task) }

// ForgettingMetric names task j's forgetting at the end: "forgetting_t{j}".
func ForgettingMetric(task int) string { return fmt.Sprintf("forgetting_t%d", task) }

type runDirsKey struct{}

// WithRunDirs returns ctx asking the kind to write every run's analysis
// directory (train.ContinualConfig.RunDir) under root, named by RunDirName.
func WithRunDirs(ctx context.Context, root string) context.Context {
	return context.WithValue(ctx, runDirsKey{}, root)
}

// RunDirName is the directory of a run under WithRunDirs' root: its series
// (method and window) and short ID, e.g. "mid-3f2a9c1b2d4e", "window-f0.25-…".
func RunDirName(cfg experiment.RunConfig) string {
	id, err := cfg.ID()
	if err != nil {
		id = "invalid"
	}
	name := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(cfg.Series(), "-")
	return strings.Trim(name, "-") + "-" + experiment.ShortID(id)
}

// params reads free-form parameters, rejecting unknown keys.
type params struct {
	m     map[string]any
	field string
	err   error
}

func newParams(m map[string]any, field string, allowed ...string) *params {
	p := &params{m: m, field: field}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok && p.err == nil {
			p.err = &experiment.FieldError{Field: field + "." + k, Msg: fmt.Sprintf("unknown parameter of the continual kind (expected one of %s)", strings.Join(allowed, ", "))}
		}
	}
	return p
}

func (p *params) fail(key, format string, args ...any) {
	if p.err == nil {
		p.err = &experiment.FieldError{Field: p.field + "." + key, Msg: fmt.Sprintf(format, args...)}
	}
}

// int reads a non-negative integer (min ≤ value).
func (p *params) int(key string, def, min int) int {
	v, ok := p.m[key]
	if !ok {
		return def
	}
	x, isNum := v.(float64)
	if !isNum || x != math.Trunc(x) || x < float64(min) {
		p.fail(key, "expected an integer ≥ %d, got %v", min, v)
		return def
	}
	return int(x)
}

// float reads a number in [lo, hi].
func (p *params) float(key string, def, lo, hi float64) float64 {
	v, ok := p.m[key]
	if !ok {
		return def
	}
	x, isNum := v.(float64)
	if !isNum || !(x >= lo && x <= hi) {
		p.fail(key, "expected a number in [%g, %g], got %v", lo, hi, v)
		return def
	}
	return x
}

// ints reads a list of positive integers.
func (p *params) ints(key string) []int {
	v, ok := p.m[key]
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		list = []any{v}
	}
	var out []int
	for _, e := range list {
		x, isNum := e.(float64)
		if !isNum || x != math.Trunc(x) || x < 1 {
			p.fail(key, "expected a list of positive integers, got %v", v)
			return nil
		}
		out = append(out, int(x))
	}
	return out
}

// setting is a parsed run configuration, the network still to be built
// from task 0's input shape.
type setting struct {
	model train.ModelSpec
	cfg   train.ContinualConfig
}

// parse maps a run configuration onto core/train's.
func parse(rc experiment.RunConfig) (setting, error) {
	var s setting
	if rc.Pretrain == nil || rc.Pretrain.Task == "" {
		return s, &experiment.FieldError{Field: "pretrain.task", Msg: "the continual kind needs task 0 to pretrain on (pretrain.task)"}
	}
	if rc.Pretrain.Checkpoint != "" {
		return s, &experiment.FieldError{Field: "pretrain.checkpoint", Msg: "the continual kind pretrains task 0 itself (cached by content); a checkpoint file is not supported"}
	}
	if len(rc.MethodParams) > 0 {
		return s, &experiment.FieldError{Field: "grid.method_params." + rc.Method, Msg: "the continual kind takes no method parameters"}
	}
	if !slicesContains(adapter.Methods, rc.Method) {
		return s, &experiment.FieldError{Field: "grid.methods", Msg: fmt.Sprintf("the continual kind implements %s, not %q", strings.Join(adapter.Methods, ", "), rc.Method)}
	}
	switch rc.Model.Name {
	case "vit":
		mp := newParams(rc.Model.Params, "model.params", "patch", "width", "depth", "heads", "mlp_dim")
		s.model = train.ModelSpec{Kind: "vit", ViT: models.ViTConfig{PatchSize: mp.int("patch", 0, 1), Width: mp.int("width", 0, 1),
			Depth: mp.int("depth", 0, 1), Heads: mp.int("heads", 0, 1), MLPDim: mp.int("mlp_dim", 0, 1)}}
		if mp.err != nil {
			return s, mp.err
		}
	case "mlp":
		mp := newParams(rc.Model.Params, "model.params", "hidden")
		s.model = train.ModelSpec{Kind: "mlp", MLPHidden: mp.ints("hidden")}
		if mp.err != nil {
			return s, mp.err
		}
	default:
		return s, &experiment.FieldError{Field: "model.name", Msg: fmt.Sprintf("the continual kind trains vit or mlp, not %q", rc.Model.Name)}
	}

	pre := train.DefaultPretrainHyper()
	pp := newParams(rc.Pretrain.Params, "pretrain.params", "train_subset", "test_subset", "weight_decay", "warmup", "clip")
	if rc.Pretrain.Epochs > 0 {
		pre.Epochs = rc.Pretrain.Epochs
	}
	if rc.Pretrain.LearningRate > 0 {
		pre.LearningRate = rc.Pretrain.LearningRate
	}
	if rc.Pretrain.BatchSize > 0 {
		pre.BatchSize = rc.Pretrain.BatchSize
	}
	pre.Seed = rc.Pretrain.Seed
	pre.WeightDecay = pp.float("weight_decay", pre.WeightDecay, 0, math.MaxFloat64)
	pre.Warmup = pp.float("warmup", pre.Warmup, 0, 1)
	pre.Clip = pp.float("clip", pre.Clip, 0, math.MaxFloat64)
	s.cfg.Pretrain = train.PretrainConfig{Task: rc.Pretrain.Task, Hyper: pre,
		TrainSubset: pp.int("train_subset", 0, 0), TestSubset: pp.int("test_subset", 0, 0)}
	if pp.err != nil {
		return s, pp.err
	}

	if len(rc.Finetune.Tasks) == 0 {
		return s, &experiment.FieldError{Field: "finetune.tasks", Msg: "the continual kind needs at least one task after pretraining"}
	}
	h := train.DefaultFinetuneHyper()
	fp := newParams(rc.Finetune.Params, "finetune.params", "train_subset", "test_subset", "weight_decay", "warmup", "clip")
	if rc.Finetune.BatchSize > 0 {
		h.BatchSize = rc.Finetune.BatchSize
	}
	h.Epochs, h.LearningRate, h.Seed = rc.Epochs, rc.LearningRate, rc.Seed
	h.WeightDecay = fp.float("weight_decay", h.WeightDecay, 0, math.MaxFloat64)
	h.Warmup = fp.float("warmup", h.Warmup, 0, 1)
	h.Clip = fp.float("clip", h.Clip, 0, math.MaxFloat64)
	s.cfg.TrainSubset = fp.int("train_subset", 0, 0)
	s.cfg.TestSubset = fp.int("test_subset", 0, 0)
	if fp.err != nil {
		return s, fp.err
	}
	s.cfg.Tasks = append([]string(nil), rc.Finetune.Tasks...)
	s.cfg.Method, s.cfg.Rank, s.cfg.Alpha, s.cfg.RSLoRA, s.cfg.SVD = rc.Method, rc.Rank, rc.Alpha, rc.RSLoRA, rc.SVD
	s.cfg.Targets = append([]string(nil), rc.Targets...)
	if rc.Window != nil {
		s.cfg.Window = lowrank.WindowSpec(*rc.Window)
	}
	s.cfg.Hyper = h
	if err := h.Validate(); err != nil {
		return s, &experiment.FieldError{Field: "grid", Msg: err.Error()}
	}
	if err := s.cfg.AdapterConfig(1).Validate(); err != nil {
		return s, &experiment.FieldError{Field: "grid.methods", Msg: err.Error()}
	}
	for i, t := range s.cfg.Tasks {
		if base, transform := train.SplitTaskName(t); base == "" || strings.Contains(transform, "/") {
			return s, &experiment.FieldError{Field: fmt.Sprintf("finetune.tasks[%d]", i), Msg: fmt.Sprintf("%q: expected a dataset name or BASE/TRANSFORM (transforms: %s)", t, strings.Join(train.TaskTransforms, ", "))}
		}
	}
	return s, nil
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Validate checks a configuration before the sweep starts.
func Validate(rc experiment.RunConfig) error {
	_, err := parse(rc)
	return err
}

// run executes one sequence.
func run(ctx context.Context, rc experiment.RunConfig, p experiment.Progress, o train.Options) (experiment.Result, error) {
	s, err := parse(rc)
	if err != nil {
		return experiment.Result{}, err
	}
	d, err := train.OpenTask(ctx, s.cfg.Pretrain.Task, o.Open)
	if err != nil {
		return experiment.Result{}, err
	}
	shape := d.Spec().ExampleShape
	if d.Spec().DType != datasets.Float32 {
		return experiment.Result{}, fmt.Errorf("continual: task 0 %s has %s inputs; the continual kind trains image classifiers", s.cfg.Pretrain.Task, d.Spec().DType)
	}
	net, err := s.model.Network(shape)
	if err != nil {
		return experiment.Result{}, err
	}
	s.cfg.Pretrain.Network = net
	if root, ok := ctx.Value(runDirsKey{}).(string); ok && root != "" {
		s.cfg.RunDir = filepath.Join(root, RunDirName(rc))
	}
	stages := len(s.cfg.Tasks)
	o.Quiet = true
	o.Callbacks = train.Callbacks{
		Progress: func(tp train.Progress) {
			var stage int
			if _, err := fmt.Sscanf(tp.Phase, "stage %d/", &stage); err != nil || stage < 1 {
				p.Report(0, stages*max(1, tp.Steps), tp.String()) // pretraining
				return
			}
			p.Report((stage-1)*tp.Steps+tp.Step, stages*tp.Steps, tp.String())
		},
		Log: func(string) {},
	}
	res, err := train.Continual(ctx, s.cfg, o)
	if err != nil {
		return experiment.Result{}, err
	}
	return resultOf(res)
}

// resultOf computes the metrics of a finished sequence with core/analysis.
func resultOf(res train.ContinualResult) (experiment.Result, error) {
	cont, err := analysis.NewContinual(res.Tasks, Matrix(res.Accuracy), nil)
	if err != nil {
		return experiment.Result{}, err
	}
	T := len(res.Tasks)
	last := cont.Stages[T-1]
	out := experiment.Result{Metrics: map[string]float64{
		MetricACC:                        100 * last.AverageAccuracy,
		MetricBWT:                        100 * last.BackwardTransfer,
		MetricMeanForgetting:             100 * last.MeanForgetting,
		experiment.MetricTaskAAccBefore:  res.Accuracy[0][0],
		experiment.MetricTaskAAccAfter:   res.Accuracy[T-1][0],
		experiment.MetricForgetting:      res.Accuracy[0][0] - res.Accuracy[T-1][0],
		experiment.MetricTaskBAcc:        res.Accuracy[T-1][T-1],
		experiment.MetricWallSeconds:     res.WallTime.Seconds(),
		MetricTrainSeconds:               res.TrainTime.Seconds(),
		experiment.MetricTrainableParams: float64(res.Stages[0].TrainableParams),
	}, Curves: map[string][]experiment.CurvePoint{}}
	for i, row := range res.Accuracy {
		for j, v := range row {
			out.Metrics[MatrixMetric(i, j)] = v
		}
	}
	f, err := cont.Accuracy.Forgetting(T - 1)
	if err != nil {
		return out, err
	}
	for j, v := range f {
		out.Metrics[ForgettingMetric(j)] = 100 * v
	}
	epoch := 0.0
	for _, st := range res.Stages {
		for _, e := range st.Curves {
			x := epoch + float64(e.Epoch)
			out.Curves["train_loss"] = append(out.Curves["train_loss"], experiment.CurvePoint{Epoch: x, Value: e.TrainLoss})
			for j := 0; j <= st.Stage; j++ {
				k := train.TaskAccuracyKey(j)
				out.Curves[k] = append(out.Curves[k], experiment.CurvePoint{Epoch: x, Value: e.Eval[k]})
			}
		}
		if n := len(st.Curves); n > 0 {
			epoch += float64(st.Curves[n-1].Epoch)
		}
	}
	return out, nil
}

// Matrix converts the lower triangle of percentages (row i has i+1
// entries) to the T×T accuracy matrix of fractions, NaN above the diagonal.
func Matrix(lower [][]float64) analysis.AccuracyMatrix {
	T := len(lower)
	r := make(analysis.AccuracyMatrix, T)
	for i := range r {
		r[i] = make([]float64, T)
		for j := range r[i] {
			r[i][j] = math.NaN()
			if j < len(lower[i]) {
				r[i][j] = lower[i][j] / 100
			}
		}
	}
	return r
}
