// Package finetune is the experiment run kind "finetune": one grid point of
// a spec becomes one core/train fine-tuning run — pretrain the model on task
// A (cached by content and shared by every run of a sweep), fine-tune it on
// task B with the run's method, window, rank, α, learning rate, epochs and
// seed, and measure what was learned and what was forgotten.
//
// Spec mapping (docs/experiments.md has the spec format):
//
//	model.name              vit | mlp
//	model.params            vit: patch, width, depth, heads, mlp (ints; defaults of core/models);
//	                        mlp: hidden (an int or a list)
//	pretrain.task           task A (a catalog dataset or a dataset plugin); required
//	pretrain.epochs, learning_rate, batch_size, seed
//	                        0 takes train.DefaultPretrainHyper's value (the seed is used as given)
//	pretrain.params         train_subset, test_subset, weight_decay, warmup, clip
//	finetune.task           task B (one task; sequences are not this kind's)
//	finetune.batch_size     0: 128
//	finetune.params         train_subset, test_subset, old_test_subset, weight_decay (0),
//	                        warmup (0.05), clip (1), trace (training-loss points per epoch, 10),
//	                        analysis (false: true writes a run directory and stores core/analysis
//	                        summaries), probe_examples (256), checkpoint_every (200 steps)
//	grid.methods            lora pissa milora mid window olora dora full head, or a method plugin
//	grid.method_params.M    a plugin method's hyperparameters (built-in methods take none)
//	adapter.targets         layer names or regular expressions (default: every backbone layer)
//	adapter.rslora, svd     as in core/adapter
//
// Metrics: b_acc, a_acc_before, a_acc_after, forgetting, a_kl,
// trainable_params, wall_s (experiment's names) and train_s, total_params,
// pretrain_acc. Curves per epoch: train_loss, train_acc, lr, b_acc, a_acc,
// forgetting (a_acc_before − a_acc); within epochs: step_loss and step_acc
// (means over the steps since the previous point, at fractional epochs).
// Summaries (with analysis: true), per adapted layer (scope = layer name) and
// for the whole model (scope "model"): see summaries in analysis.go.
//
// A failed run returns an error whose first line is the reason: a plugin
// fault is reported by (*host.Error).Reason() ("crash: method plugin …").
// Every run is deterministic: the same configuration gives the same numbers
// (wall_s and train_s apart), also when it is resumed from core/train's
// checkpoint after the process was killed.
package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/internal/faultpoint"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/plugins/host"
)

// Name is the run kind's name.
const Name = "finetune"

// Kind is the run kind, ready to register with experiment.Kinds.
var Kind = experiment.Kind{
	Name:     Name,
	Run:      Run,
	Validate: Validate,
	Threads:  runtime.NumCPU(),
	Doc:      "pretrain (cached) on task A, fine-tune on task B with a LoRA-family method, measure learning and forgetting (core/train)",
}

// Options are how runs are carried out (nothing here changes a result).
// Tests and commands set them before a sweep; the zero value uses
// $PRISM_CACHE_DIR, $PRISM_BACKEND and the plugin search path.
type Options struct {
	// CacheDir, Backend: see train.Options.
	CacheDir string
	Backend  string
	// PluginDirs are searched for method and dataset plugins (nil: host.SearchPath()).
	PluginDirs []string
}

// Settings is the process-wide Options of the kind.
var Settings Options

// settings is a configuration parsed and checked, without the data.
type settings struct {
	model       train.ModelSpec
	pre         train.PretrainConfig // Network unset
	ft          train.FinetuneConfig // Pretrain unset
	analysis    bool
	probes      int
	trace       int
	every       int
	plugin      bool // the method is not built in
	methodField string
}

// parse maps a RunConfig onto core/train's configurations (FieldErrors name
// the spec field).
func parse(cfg experiment.RunConfig) (settings, error) {
	var s settings
	if cfg.Kind != "" && cfg.Kind != Name {
		return s, &experiment.FieldError{Field: "kind", Msg: fmt.Sprintf("configuration of kind %q given to the %s kind", cfg.Kind, Name)}
	}
	var err error
	mp, err := normalise("model.params", cfg.Model.Params)
	if err != nil {
		return s, err
	}
	switch cfg.Model.Name {
	case "vit":
		if err := mp.check("patch", "width", "depth", "heads", "mlp"); err != nil {
			return s, err
		}
		v := &s.model.ViT
		for _, f := range []struct {
			key string
			dst *int
		}{{"patch", &v.PatchSize}, {"width", &v.Width}, {"depth", &v.Depth}, {"heads", &v.Heads}, {"mlp", &v.MLPDim}} {
			if *f.dst, err = mp.int(f.key, 0, 1); err != nil {
				return s, err
			}
		}
		s.model.Kind = "vit"
	case "mlp":
		if err := mp.check("hidden"); err != nil {
			return s, err
		}
		if s.model.MLPHidden, err = mp.ints("hidden", nil); err != nil {
			return s, err
		}
		s.model.Kind = "mlp"
	default:
		return s, &experiment.FieldError{Field: "model.name", Msg: fmt.Sprintf("the %s kind trains vit or mlp, not %q", Name, cfg.Model.Name)}
	}

	// Task A.
	p := cfg.Pretrain
	if p == nil || p.Task == "" {
		if p != nil && p.Checkpoint != "" {
			return s, &experiment.FieldError{Field: "pretrain.checkpoint", Msg: fmt.Sprintf("the %s kind pretrains on pretrain.task itself (cached by content); loading a checkpoint file is not supported", Name)}
		}
		return s, &experiment.FieldError{Field: "pretrain.task", Msg: "required: the dataset of task A to pretrain on (e.g. mnist)"}
	}
	if p.Checkpoint != "" {
		return s, &experiment.FieldError{Field: "pretrain.checkpoint", Msg: "give pretrain.task or pretrain.checkpoint, not both (and this kind does not load checkpoint files)"}
	}
	pp, err := normalise("pretrain.params", p.Params)
	if err != nil {
		return s, err
	}
	if err := pp.check("train_subset", "test_subset", "weight_decay", "warmup", "clip"); err != nil {
		return s, err
	}
	h := train.DefaultPretrainHyper()
	if p.Epochs > 0 {
		h.Epochs = p.Epochs
	}
	if p.LearningRate > 0 {
		h.LearningRate = p.LearningRate
	}
	if p.BatchSize > 0 {
		h.BatchSize = p.BatchSize
	}
	h.Seed = p.Seed
	if h.WeightDecay, err = pp.float("weight_decay", h.WeightDecay, 0, 10); err != nil {
		return s, err
	}
	if h.Warmup, err = pp.float("warmup", h.Warmup, 0, 1); err != nil {
		return s, err
	}
	if h.Clip, err = pp.float("clip", h.Clip, 0, 1e6); err != nil {
		return s, err
	}
	s.pre = train.PretrainConfig{Task: p.Task, Hyper: h}
	if s.pre.TrainSubset, err = pp.int("train_subset", 0, 0); err != nil {
		return s, err
	}
	if s.pre.TestSubset, err = pp.int("test_subset", 0, 0); err != nil {
		return s, err
	}

	// Task B.
	switch n := len(cfg.Finetune.Tasks); {
	case n == 0:
		return s, &experiment.FieldError{Field: "finetune.task", Msg: "required: the dataset of task B (e.g. fashion-mnist)"}
	case n > 1:
		return s, &experiment.FieldError{Field: "finetune.tasks", Msg: fmt.Sprintf("the %s kind fine-tunes on one task (finetune.task), not a sequence of %d", Name, n)}
	}
	fp, err := normalise("finetune.params", cfg.Finetune.Params)
	if err != nil {
		return s, err
	}
	if err := fp.check("train_subset", "test_subset", "old_test_subset", "weight_decay", "warmup", "clip", "trace",
		"analysis", "probe_examples", "checkpoint_every"); err != nil {
		return s, err
	}
	fh := train.DefaultFinetuneHyper()
	if cfg.Finetune.BatchSize > 0 {
		fh.BatchSize = cfg.Finetune.BatchSize
	}
	if cfg.Epochs < 1 {
		return s, &experiment.FieldError{Field: "grid.epochs", Msg: fmt.Sprintf("expected at least 1 epoch, got %d", cfg.Epochs)}
	}
	if !(cfg.LearningRate > 0) {
		return s, &experiment.FieldError{Field: "grid.learning_rates", Msg: fmt.Sprintf("expected a learning rate > 0, got %v", cfg.LearningRate)}
	}
	fh.Epochs, fh.LearningRate, fh.Seed = cfg.Epochs, cfg.LearningRate, cfg.Seed
	if fh.WeightDecay, err = fp.float("weight_decay", fh.WeightDecay, 0, 10); err != nil {
		return s, err
	}
	if fh.Warmup, err = fp.float("warmup", fh.Warmup, 0, 1); err != nil {
		return s, err
	}
	if fh.Clip, err = fp.float("clip", fh.Clip, 0, 1e6); err != nil {
		return s, err
	}
	ft := train.FinetuneConfig{Task: cfg.Finetune.Tasks[0], Method: cfg.Method, Hyper: fh,
		Rank: cfg.Rank, Alpha: cfg.Alpha, RSLoRA: cfg.RSLoRA, SVD: cfg.SVD, Targets: cfg.Targets}
	if ft.TrainSubset, err = fp.int("train_subset", 0, 0); err != nil {
		return s, err
	}
	if ft.TestSubset, err = fp.int("test_subset", 0, 0); err != nil {
		return s, err
	}
	if ft.OldTestSubset, err = fp.int("old_test_subset", 0, 0); err != nil {
		return s, err
	}
	if s.trace, err = fp.int("trace", 10, 0); err != nil {
		return s, err
	}
	if s.analysis, err = fp.bool("analysis", false); err != nil {
		return s, err
	}
	if s.probes, err = fp.int("probe_examples", 256, 1); err != nil {
		return s, err
	}
	if s.every, err = fp.int("checkpoint_every", train.DefaultCheckpointEvery, 1); err != nil {
		return s, err
	}

	// The method.
	s.methodField = "grid.methods"
	builtin := isBuiltin(cfg.Method)
	s.plugin = !builtin
	if builtin {
		if len(cfg.MethodParams) > 0 {
			return s, &experiment.FieldError{Field: "grid.method_params." + cfg.Method, Msg: fmt.Sprintf("the built-in method %s takes no parameters here", cfg.Method)}
		}
		if cfg.Method == adapter.MethodWindow {
			if cfg.Window == nil {
				return s, &experiment.FieldError{Field: "grid.window_starts", Msg: "method window needs window_starts or window_fractions"}
			}
			ft.Window = lowrank.WindowSpec(*cfg.Window)
		}
	} else if cfg.Method == "" {
		return s, &experiment.FieldError{Field: "grid.methods", Msg: "no method"}
	}
	s.ft = ft
	return s, nil
}

// normalise round-trips a free-form map through JSON (so YAML's ints and
// JSON's float64s read alike) and wraps it for reading.
func normalise(field string, m map[string]any) (params, error) {
	p := params{field: field}
	if len(m) == 0 {
		return p, nil
	}
	b, err := json.Marshal(m)
	if err == nil {
		err = json.Unmarshal(b, &p.m)
	}
	if err != nil {
		return p, &experiment.FieldError{Field: field, Msg: fmt.Sprintf("not a plain mapping of numbers, booleans and strings: %v", err)}
	}
	return p, nil
}

// isBuiltin reports whether core/adapter implements the method.
func isBuiltin(name string) bool {
	for _, m := range adapter.Methods {
		if m == name {
			return true
		}
	}
	return false
}

// Validate checks a configuration before a sweep starts: the parameters,
// the model against task A's example shape, the targets against the
// model's layers, the rank and window against each targeted layer's
// k = min(m, n), and a plugin method's hyperparameters against its metadata
// (best effort: a plugin that cannot be started here is left for the run to
// report as a failure, so one bad plugin does not stop a sweep).
func Validate(cfg experiment.RunConfig) error {
	s, err := parse(cfg)
	if err != nil {
		return err
	}
	shape, ok := exampleShape(s.pre.Task)
	if !ok {
		return nil // a dataset plugin: checked when the run opens it
	}
	net, err := s.model.Network(shape)
	if err != nil {
		return &experiment.FieldError{Field: "model", Msg: err.Error()}
	}
	if !isBuiltin(cfg.Method) {
		if err := validatePluginMethod(cfg); err != nil {
			return err
		}
	}
	return checkLayers(s, cfg, net.Layers)
}

// checkLayers resolves the targets and checks rank and window per layer.
func checkLayers(s settings, cfg experiment.RunConfig, layers []adapter.Layer) error {
	ac := adapter.Config{Method: adapter.MethodLoRA, Rank: max(1, cfg.Rank)}
	targets := cfg.Targets
	if len(targets) == 0 {
		for _, l := range layers {
			targets = append(targets, l.Name)
		}
	}
	assigned, err := adapter.NewPlan(ac, targets...).Resolve(layers)
	if err != nil {
		return &experiment.FieldError{Field: "adapter.targets", Msg: err.Error()}
	}
	if cfg.Rank == 0 {
		return nil // full, head
	}
	for _, a := range assigned {
		k := min(a.Layer.Out, a.Layer.In)
		if cfg.Rank > k {
			return &experiment.FieldError{Field: "grid.ranks", Msg: fmt.Sprintf("rank %d exceeds k = min(m, n) = %d of layer %s (%d×%d)", cfg.Rank, k, a.Layer.Name, a.Layer.Out, a.Layer.In)}
		}
		if w := cfg.Window; w != nil && w.Preset == "start" && w.Start+cfg.Rank > k {
			return &experiment.FieldError{Field: "grid.window_starts", Msg: fmt.Sprintf("window start %d with rank %d runs past k = %d components (layer %s)", w.Start, cfg.Rank, k, a.Layer.Name)}
		}
	}
	return nil
}

// Run executes one configuration.
func Run(ctx context.Context, cfg experiment.RunConfig, prog experiment.Progress) (experiment.Result, error) {
	res, err := run(ctx, cfg, prog)
	if err != nil && ctx.Err() == nil {
		err = explain(err)
	}
	return res, err
}

// explain puts a plugin fault's one-line reason first.
func explain(err error) error {
	var he *host.Error
	if errors.As(err, &he) {
		return fmt.Errorf("%s\n%w", he.Reason(), err)
	}
	return err
}

func run(ctx context.Context, cfg experiment.RunConfig, prog experiment.Progress) (experiment.Result, error) {
	if prog == nil {
		prog = experiment.NopProgress{}
	}
	s, err := parse(cfg)
	if err != nil {
		return experiment.Result{}, err
	}
	h, err := host.New(host.Options{Dirs: Settings.PluginDirs})
	if err != nil {
		return experiment.Result{}, err
	}
	defer h.Close()
	open := sharedOpen(ctx, h)
	data, err := open(ctx, s.pre.Task)
	if err != nil {
		return experiment.Result{}, err
	}
	net, err := s.model.Network(data.Spec().ExampleShape)
	if err != nil {
		return experiment.Result{}, &experiment.FieldError{Field: "model", Msg: err.Error()}
	}
	if err := checkLayers(s, cfg, net.Layers); err != nil {
		return experiment.Result{}, err
	}
	s.pre.Network = net
	s.ft.Pretrain = s.pre
	if s.plugin {
		if s.ft.External, err = pluginMethod(ctx, h, cfg); err != nil {
			return experiment.Result{}, err
		}
	}
	opts := train.Options{
		Backend: Settings.Backend, CacheDir: Settings.CacheDir, Open: open, Quiet: true,
		CheckpointEvery: s.every, TracePerEpoch: s.trace,
		Callbacks: train.Callbacks{
			Progress: func(p train.Progress) {
				prog.Report(p.Step, p.Steps, p.String())
				if p.Phase == "finetune" {
					faultpoint.Hit("finetune.step")
				}
			},
			Log: func(string) {},
		},
	}

	// The base model: trained once per sweep (and per cache directory:
	// train.Pretrain's lock file and atomic rename make concurrent
	// processes train it once), then read from the cache by every run.
	v, err := experiment.SharedCache(ctx).Do(ctx, "finetune/pretrained/"+cfg.PretrainKey(), func(ctx context.Context) (any, error) {
		return train.Pretrain(ctx, s.pre, opts)
	})
	if err != nil {
		return experiment.Result{}, err
	}
	pre := v.(*train.Pretrained)

	if s.analysis {
		dir, err := os.MkdirTemp("", "prism-finetune-run-")
		if err != nil {
			return experiment.Result{}, err
		}
		defer os.RemoveAll(dir)
		s.ft.RunDir, s.ft.ProbeExamples = dir, s.probes
	}
	r, err := train.Finetune(ctx, s.ft, opts)
	if err != nil {
		return experiment.Result{}, err
	}
	out := result(r, pre)
	if s.analysis {
		sums, err := summaries(ctx, r.RunDir)
		if err != nil {
			return experiment.Result{}, fmt.Errorf("analysing the run: %w", err)
		}
		out.Summaries = sums
	}
	for _, l := range r.Layers {
		if l.Rank > 0 {
			out.Summaries = append(out.Summaries, experiment.Summary{Scope: l.Name, Key: "window_start", Value: float64(l.Start)})
		}
	}
	return out, nil
}

// result converts core/train's result.
func result(r train.Result, pre *train.Pretrained) experiment.Result {
	out := experiment.Result{Metrics: r.Metrics(), Curves: map[string][]experiment.CurvePoint{}}
	out.Metrics["total_params"] = float64(r.TotalParams)
	out.Metrics["pretrain_acc"] = pre.TestAccuracy
	for name, pts := range r.CurveSeries() {
		for _, p := range pts {
			out.Curves[name] = append(out.Curves[name], experiment.CurvePoint{Epoch: p.Epoch, Value: p.Value})
		}
	}
	for _, p := range out.Curves["a_acc"] {
		out.Curves["forgetting"] = append(out.Curves["forgetting"], experiment.CurvePoint{Epoch: p.Epoch, Value: r.TaskAAccuracyBefore - p.Value})
	}
	for _, t := range r.Trace {
		out.Curves["step_loss"] = append(out.Curves["step_loss"], experiment.CurvePoint{Epoch: t.Epoch, Value: t.Loss})
		out.Curves["step_acc"] = append(out.Curves["step_acc"], experiment.CurvePoint{Epoch: t.Epoch, Value: t.Accuracy})
	}
	return out
}
