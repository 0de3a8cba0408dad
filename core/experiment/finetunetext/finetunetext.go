// Package finetunetext is the run kind "finetune-text": a byte-level causal
// transformer language model (core/models.LM) pretrained on one corpus
// (task A, the King James Bible by default; cached by content) and
// fine-tuned on another (task B, Jane Austen's novels) with a LoRA-family
// method, measuring the new corpus's test bits per character and the rise of
// the old corpus's (core/train.FinetuneText).
//
// Both corpora are bytes, so the model keeps its one output layer; there is
// no new head. Forgetting is measured on the very network that was
// fine-tuned.
//
// # Spec
//
//	kind: finetune-text
//	model:
//	  name: lm
//	  params: {width: 64, depth: 2, heads: 4, mlp_dim: 256, context: 64, positions: learned}
//	pretrain:
//	  task: kjv
//	  epochs: 1
//	  learning_rate: 2e-3
//	  batch_size: 32
//	  seed: 1
//	  params: {train_subset: 24000, test_subset: 256, eval_every: 250, weight_decay: 0.01, warmup: 0.05, clip: 1}
//	finetune:
//	  task: austen
//	  batch_size: 32
//	  params: {train_subset: 3200, test_subset: 256, old_test_subset: 256, eval_every: 25,
//	           weight_decay: 0, warmup: 0.05, clip: 1, train_head: false,
//	           prompt: "When she came to the house, ", sample_length: 240, sample_temperature: 0.8, sample_seed: 1}
//	adapter:
//	  targets: ['blocks\.\d+\..*']   # default: every block's linear layers
//
// Every parameter is optional (the defaults are core/models.DefaultLM and
// core/train.DefaultTextPretrain / DefaultTextFinetune, full data). Subsets
// count windows of `context` bytes.
//
// # Metrics
//
// b_bpc, b_bpc_before, a_bpc_before, a_bpc_after, bpc_forgetting (=
// a_bpc_after − a_bpc_before, bits per character; positive = forgot), a_kl
// (nats per position), trainable_params, wall_s, train_s. Curves against
// the epoch: train_loss, train_bpc, train_acc, lr, b_bpc, a_bpc, a_kl.
// Summaries: scope "sample" (keys prompt, before, after: the generated
// texts), scope "pretrain" (test_bpc, seconds, key) and, per adapted
// layer, its window start ("window_start").
package finetunetext

import (
	"context"
	"embed"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/train"
)

// Name is the run kind's name.
const Name = "finetune-text"

// ModelName is the model.name the kind accepts.
const ModelName = "lm"

// Kind is the run kind with the default options, ready to register.
var Kind = KindWith(KindOptions{})

// KindOptions configure the kind's runs; nothing in them changes a result.
type KindOptions struct {
	// Train are the training options (the cache directory, the backend,
	// how datasets are opened). Their callbacks and Quiet are replaced by
	// the runner's progress.
	Train train.Options
	// RunDirs, when set, gives every run an analysis directory (the files
	// core/analysis reads, see train.TextFinetuneConfig.RunDir) named
	// RunDirs/ID12, ID12 the first 12 hex digits of the run's ID.
	RunDirs string
}

// KindWith is the run kind with the given options.
func KindWith(o KindOptions) experiment.Kind {
	return experiment.Kind{
		Name: Name,
		Run: func(ctx context.Context, cfg experiment.RunConfig, p experiment.Progress) (experiment.Result, error) {
			return run(ctx, cfg, p, o)
		},
		Validate: Validate,
		Threads:  runtime.NumCPU(),
		Doc:      "byte-level transformer LM pretrained on one corpus (kjv), fine-tuned on another (austen); bits per character and their rise",
	}
}

// RunDir is the analysis directory of a run under root (KindOptions.RunDirs).
func RunDir(root string, cfg experiment.RunConfig) (string, error) {
	id, err := cfg.ID()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, experiment.ShortID(id)), nil
}

//go:embed specs/*.yaml
var specFiles embed.FS

// Spec files of the text reproduction (also in the repository's
// experiments/ directory, kept identical by a test).
const (
	QuickSpecFile = "text-quick.yaml"
	FullSpecFile  = "text.yaml"
)

// SpecSource returns the text of a built-in spec (QuickSpecFile or
// FullSpecFile).
func SpecSource(name string) ([]byte, error) {
	return specFiles.ReadFile("specs/" + name)
}

var modelKeys = []string{"width", "depth", "heads", "mlp_dim", "context", "positions"}
var pretrainKeys = []string{"train_subset", "test_subset", "eval_every", "weight_decay", "warmup", "clip"}
var finetuneKeys = []string{"train_subset", "test_subset", "old_test_subset", "eval_every", "weight_decay", "warmup", "clip",
	"train_head", "prompt", "sample_length", "sample_temperature", "sample_seed"}

func checkKeys(p map[string]any, field string, allowed []string) error {
	for k := range p {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return &experiment.FieldError{Field: field + "." + k, Msg: fmt.Sprintf("unknown parameter of the %s kind (expected one of %v)", Name, allowed)}
		}
	}
	return nil
}

// intParam sets *dst from p[key] when present: an integer ≥ lo.
func intParam(p map[string]any, key, field string, lo int, dst *int) error {
	v, ok := p[key]
	if !ok {
		return nil
	}
	x, isNum := v.(float64)
	if !isNum || x != math.Trunc(x) || x < float64(lo) || x > 1<<40 {
		return &experiment.FieldError{Field: field + "." + key, Msg: fmt.Sprintf("expected an integer ≥ %d, got %v", lo, v)}
	}
	*dst = int(x)
	return nil
}

// floatParam sets *dst from p[key] when present: a finite number ≥ 0 (≤ hi when hi > 0).
func floatParam(p map[string]any, key, field string, hi float64, dst *float64) error {
	v, ok := p[key]
	if !ok {
		return nil
	}
	x, isNum := v.(float64)
	if !isNum || !(x >= 0) || math.IsInf(x, 0) || (hi > 0 && x > hi) {
		msg := fmt.Sprintf("expected a number ≥ 0, got %v", v)
		if hi > 0 {
			msg = fmt.Sprintf("expected a number in [0, %g], got %v", hi, v)
		}
		return &experiment.FieldError{Field: field + "." + key, Msg: msg}
	}
	*dst = x
	return nil
}

func stringParam(p map[string]any, key, field string, dst *string) error {
	v, ok := p[key]
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		return &experiment.FieldError{Field: field + "." + key, Msg: fmt.Sprintf("expected a string, got %v", v)}
	}
	*dst = s
	return nil
}

func boolParam(p map[string]any, key, field string, dst *bool) error {
	v, ok := p[key]
	if !ok {
		return nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return &experiment.FieldError{Field: field + "." + key, Msg: fmt.Sprintf("expected true or false, got %v", v)}
	}
	*dst = b
	return nil
}

// Model returns the language model a configuration describes.
func Model(cfg experiment.RunConfig) (models.LMConfig, error) {
	if cfg.Model.Name != ModelName {
		return models.LMConfig{}, &experiment.FieldError{Field: "model.name", Msg: fmt.Sprintf("the %s kind fine-tunes the byte-level language model %q, not %q", Name, ModelName, cfg.Model.Name)}
	}
	p := cfg.Model.Params
	if err := checkKeys(p, "model.params", modelKeys); err != nil {
		return models.LMConfig{}, err
	}
	m := models.DefaultLM()
	mlpSet := false
	if _, ok := p["mlp_dim"]; ok {
		mlpSet = true
	}
	for _, f := range []struct {
		key string
		dst *int
		lo  int
	}{{"width", &m.Width, 1}, {"depth", &m.Depth, 0}, {"heads", &m.Heads, 1}, {"mlp_dim", &m.MLPDim, 1}, {"context", &m.Context, 1}} {
		if err := intParam(p, f.key, "model.params", f.lo, f.dst); err != nil {
			return m, err
		}
	}
	if !mlpSet {
		m.MLPDim = 4 * m.Width
	}
	if err := stringParam(p, "positions", "model.params", &m.Positions); err != nil {
		return m, err
	}
	if err := m.Validate(); err != nil {
		return m, &experiment.FieldError{Field: "model.params", Msg: err.Error()}
	}
	return m, nil
}

// Config converts a run configuration into core/train's.
func Config(cfg experiment.RunConfig) (train.TextFinetuneConfig, error) {
	m, err := Model(cfg)
	if err != nil {
		return train.TextFinetuneConfig{}, err
	}
	pre := train.DefaultTextPretrain(m, false)
	if p := cfg.Pretrain; p != nil {
		if p.Checkpoint != "" {
			return train.TextFinetuneConfig{}, &experiment.FieldError{Field: "pretrain.checkpoint", Msg: fmt.Sprintf("the %s kind pretrains its model (cached by content); checkpoint files are not supported", Name)}
		}
		if p.Task != "" {
			pre.Task = p.Task
		}
		if p.Epochs > 0 {
			pre.Hyper.Epochs = p.Epochs
		}
		if p.LearningRate > 0 {
			pre.Hyper.LearningRate = p.LearningRate
		}
		if p.BatchSize > 0 {
			pre.Hyper.BatchSize = p.BatchSize
		}
		pre.Hyper.Seed = p.Seed
		pp := p.Params
		if err := checkKeys(pp, "pretrain.params", pretrainKeys); err != nil {
			return train.TextFinetuneConfig{}, err
		}
		for _, e := range []error{
			intParam(pp, "train_subset", "pretrain.params", 0, &pre.TrainSubset),
			intParam(pp, "test_subset", "pretrain.params", 0, &pre.TestSubset),
			intParam(pp, "eval_every", "pretrain.params", 0, &pre.EvalEvery),
			floatParam(pp, "weight_decay", "pretrain.params", 0, &pre.Hyper.WeightDecay),
			floatParam(pp, "warmup", "pretrain.params", 1, &pre.Hyper.Warmup),
			floatParam(pp, "clip", "pretrain.params", 0, &pre.Hyper.Clip),
		} {
			if e != nil {
				return train.TextFinetuneConfig{}, e
			}
		}
	}
	if len(cfg.Finetune.Tasks) != 1 {
		return train.TextFinetuneConfig{}, &experiment.FieldError{Field: "finetune.tasks", Msg: fmt.Sprintf("the %s kind fine-tunes on one task, got %d", Name, len(cfg.Finetune.Tasks))}
	}
	c := train.DefaultTextFinetune(pre, cfg.Method, false)
	c.Task = cfg.Finetune.Tasks[0]
	if cfg.Finetune.BatchSize > 0 {
		c.Hyper.BatchSize = cfg.Finetune.BatchSize
	}
	c.Rank, c.Alpha, c.RSLoRA, c.SVD, c.Targets = cfg.Rank, cfg.Alpha, cfg.RSLoRA, cfg.SVD, cfg.Targets
	c.Window = lowrank.WindowSpec{}
	if cfg.Window != nil {
		c.Window = lowrank.WindowSpec(*cfg.Window)
	}
	c.Hyper.LearningRate, c.Hyper.Seed, c.Hyper.Epochs = cfg.LearningRate, cfg.Seed, cfg.Epochs
	fp := cfg.Finetune.Params
	if err := checkKeys(fp, "finetune.params", finetuneKeys); err != nil {
		return c, err
	}
	sampleSeed := float64(c.Sample.Seed)
	for _, e := range []error{
		intParam(fp, "train_subset", "finetune.params", 0, &c.TrainSubset),
		intParam(fp, "test_subset", "finetune.params", 0, &c.TestSubset),
		intParam(fp, "old_test_subset", "finetune.params", 0, &c.OldTestSubset),
		intParam(fp, "eval_every", "finetune.params", 0, &c.EvalEvery),
		floatParam(fp, "weight_decay", "finetune.params", 0, &c.Hyper.WeightDecay),
		floatParam(fp, "warmup", "finetune.params", 1, &c.Hyper.Warmup),
		floatParam(fp, "clip", "finetune.params", 0, &c.Hyper.Clip),
		boolParam(fp, "train_head", "finetune.params", &c.TrainHead),
		stringParam(fp, "prompt", "finetune.params", &c.Sample.Prompt),
		intParam(fp, "sample_length", "finetune.params", 0, &c.Sample.Length),
		floatParam(fp, "sample_temperature", "finetune.params", 0, &c.Sample.Temperature),
		floatParam(fp, "sample_seed", "finetune.params", 0, &sampleSeed),
	} {
		if e != nil {
			return c, e
		}
	}
	if sampleSeed != math.Trunc(sampleSeed) {
		return c, &experiment.FieldError{Field: "finetune.params.sample_seed", Msg: fmt.Sprintf("expected an integer ≥ 0, got %v", sampleSeed)}
	}
	c.Sample.Seed = uint64(sampleSeed)
	if len(cfg.MethodParams) > 0 {
		return c, &experiment.FieldError{Field: "grid.method_params." + cfg.Method, Msg: fmt.Sprintf("the %s kind takes no method parameters", Name)}
	}
	return c, nil
}

// Validate checks a run's configuration before a sweep starts: the model,
// the parameters, the method, and that every window fits its layers.
func Validate(cfg experiment.RunConfig) error {
	c, err := Config(cfg)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		field := "grid"
		switch {
		case cfg.Window != nil && cfg.Window.Preset == "start":
			field = "grid.window_starts"
		case cfg.Rank > 0:
			field = "grid.ranks"
		}
		return &experiment.FieldError{Field: field, Msg: err.Error()}
	}
	return nil
}

// run fine-tunes one configuration and maps the result into the
// experiment's metrics, curves and summaries.
func run(ctx context.Context, cfg experiment.RunConfig, p experiment.Progress, ko KindOptions) (experiment.Result, error) {
	c, err := Config(cfg)
	if err != nil {
		return experiment.Result{}, err
	}
	if ko.RunDirs != "" {
		if c.RunDir, err = RunDir(ko.RunDirs, cfg); err != nil {
			return experiment.Result{}, err
		}
	}
	o := ko.Train
	o.Quiet = true
	o.Callbacks = train.Callbacks{Progress: func(pr train.Progress) {
		p.Report(pr.Step, pr.Steps, fmt.Sprintf("%s step %d/%d bpc %.3f ETA %s", pr.Phase, pr.Step, pr.Steps, pr.Loss/math.Ln2, pr.ETA.Round(time.Second)))
	}}
	res, err := train.FinetuneText(ctx, c, o)
	if err != nil {
		return experiment.Result{}, err
	}
	return Result(res), nil
}

// Result maps a text fine-tuning result into an experiment result.
func Result(res train.TextResult) experiment.Result {
	out := experiment.Result{Metrics: res.Metrics(), Curves: map[string][]experiment.CurvePoint{}}
	for name, pts := range res.CurveSeries() {
		for _, pt := range pts {
			out.Curves[name] = append(out.Curves[name], experiment.CurvePoint{Epoch: pt.Epoch, Value: pt.Value})
		}
	}
	out.Summaries = append(out.Summaries,
		experiment.Summary{Scope: SampleScope, Key: SamplePrompt, Text: res.Sample.Prompt},
		experiment.Summary{Scope: SampleScope, Key: SampleBefore, Text: res.SampleBefore},
		experiment.Summary{Scope: SampleScope, Key: SampleAfter, Text: res.SampleAfter},
		experiment.Summary{Scope: "pretrain", Key: "test_bpc", Value: res.PretrainTest.BPC},
		experiment.Summary{Scope: "pretrain", Key: "seconds", Value: res.PretrainSeconds},
		experiment.Summary{Scope: "pretrain", Key: "key", Text: res.Pretrained},
	)
	for _, l := range res.Layers {
		if l.Rank > 0 {
			out.Summaries = append(out.Summaries, experiment.Summary{Scope: l.Name, Key: "window_start", Value: float64(l.Start)})
		}
	}
	return out
}

// Summary scope and keys of the generated samples.
const (
	SampleScope  = "sample"
	SamplePrompt = "prompt"
	SampleBefore = "before"
	SampleAfter  = "after"
)
