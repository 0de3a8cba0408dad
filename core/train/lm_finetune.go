package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/datasets"
)

// Default tasks of the text experiment (DESIGN.md §3).
const (
	DefaultTextTaskA = "kjv"    // the King James Bible
	DefaultTextTaskB = "austen" // Jane Austen's six novels
)

// TextFinetuneConfig is one fine-tuning run of a pretrained language model
// on a new corpus (task B).
//
// Both tasks predict the next byte over the same vocabulary, so the network
// keeps one output layer (lm_head) for both: there is no new head, and the
// model measured on task A after fine-tuning is exactly the model that was
// fine-tuned. Adapter methods train only their adapters (lm_head, the
// embeddings and the LayerNorms stay frozen, unless TrainHead); "full"
// trains every variable; "head" trains lm_head alone (the text analogue of
// a linear probe).
//
// Every field is part of the run's fingerprint.
type TextFinetuneConfig struct {
	Pretrain TextPretrainConfig `json:"pretrain"`
	// Task is the dataset of task B, e.g. "austen".
	Task string `json:"task"`
	// Method is one of adapter.Methods.
	Method string  `json:"method"`
	Rank   int     `json:"rank,omitempty"`
	Alpha  float64 `json:"alpha,omitempty"`
	RSLoRA bool    `json:"rslora,omitempty"`
	// Window is where method "window" starts (start index or fraction).
	Window lowrank.WindowSpec `json:"window"`
	// SVD is "full" (default) or "randomized".
	SVD string `json:"svd,omitempty"`
	// Targets are layer names or regular expressions over the model's
	// linear layers (tok_embed, blocks.i.{attn.qkv, attn.proj, mlp.fc1,
	// mlp.fc2}, lm_head); empty means every block's linear layers
	// (TextTargets). For full and head they only choose the layers recorded
	// in the result.
	Targets []string `json:"targets,omitempty"`
	// TrainHead also trains lm_head (weight and bias) with an adapter method.
	TrainHead bool  `json:"train_head,omitempty"`
	Hyper     Hyper `json:"hyper"`
	// TrainSubset and TestSubset restrict task B's splits, OldTestSubset
	// task A's test split, to their first N windows of a fixed permutation
	// (0: all).
	TrainSubset   int `json:"train_subset,omitempty"`
	TestSubset    int `json:"test_subset,omitempty"`
	OldTestSubset int `json:"old_test_subset,omitempty"`
	// EvalEvery is the number of steps between curve points (0: one per epoch).
	EvalEvery int `json:"eval_every,omitempty"`
	// Sample is the text generated before and after fine-tuning.
	Sample SampleConfig `json:"sample"`

	// RunDir, when set, receives the files core/analysis reads
	// (writeTextRunDir): `prism analyze RUNDIR` then decomposes what
	// fine-tuning changed in every adapted layer.
	RunDir string `json:"-"`
	// ProbeWindows is the number of task-A test windows whose layer inputs
	// and logits the run directory stores (0: DefaultProbeWindows).
	ProbeWindows int `json:"-"`
}

// TextTargets names every linear layer of the model's blocks: the default
// adapter targets.
func TextTargets(m models.LMConfig) []string {
	var out []string
	for _, l := range m.LinearLayers() {
		if strings.HasPrefix(l.Name, "blocks.") {
			out = append(out, l.Name)
		}
	}
	return out
}

func (c TextFinetuneConfig) targets() []string {
	if len(c.Targets) > 0 {
		return c.Targets
	}
	return TextTargets(c.Pretrain.Model)
}

// AdapterConfig is the adapter.Config the run applies to its targets.
func (c TextFinetuneConfig) AdapterConfig() adapter.Config {
	return adapter.Config{Method: c.Method, Rank: c.Rank, Alpha: c.Alpha, RSLoRA: c.RSLoRA, Window: c.Window,
		SVD: c.SVD, Seed: c.Hyper.Seed}
}

// Layers lists the language model's linear layers as adapter layers.
func textLayers(m models.LMConfig) []adapter.Layer {
	var out []adapter.Layer
	for _, l := range m.LinearLayers() {
		out = append(out, adapter.Layer{Name: l.Name, Out: l.Out, In: l.In})
	}
	return out
}

// Validate checks the configuration (without loading anything), including
// that the targets match layers and that every window fits them.
func (c TextFinetuneConfig) Validate() error {
	if err := c.Pretrain.Validate(); err != nil {
		return err
	}
	if c.Task == "" {
		return fmt.Errorf("text finetune: no task B (dataset name)")
	}
	if err := c.AdapterConfig().Validate(); err != nil {
		return fmt.Errorf("text finetune: %w", err)
	}
	if err := c.Hyper.Validate(); err != nil {
		return fmt.Errorf("text finetune: %w", err)
	}
	if err := c.Sample.Validate(); err != nil {
		return err
	}
	for _, t := range c.Targets {
		if _, err := regexp.Compile(t); err != nil {
			return fmt.Errorf("text finetune: target %q is not a regular expression: %v", t, err)
		}
	}
	if c.TrainSubset < 0 || c.TestSubset < 0 || c.OldTestSubset < 0 || c.EvalEvery < 0 || c.ProbeWindows < 0 {
		return fmt.Errorf("text finetune: subset sizes and eval_every must be ≥ 0 (0 = all, or once per epoch)")
	}
	assigned, err := adapter.NewPlan(c.AdapterConfig(), c.targets()...).Resolve(textLayers(c.Pretrain.Model))
	if err != nil {
		return fmt.Errorf("text finetune: %w", err)
	}
	ac := c.AdapterConfig()
	for _, a := range assigned {
		name, out, in := a.Layer.Name, a.Layer.Out, a.Layer.In
		if k := min(out, in); ac.IsAdapter() && c.Rank > k {
			return fmt.Errorf("text finetune: layer %s (%d×%d): rank %d exceeds min(out, in) = %d", name, out, in, c.Rank, k)
		}
		if ac.IsWindow() {
			if _, err := ac.LowRank(name).Window.Resolve(name, out, in, c.Rank); err != nil {
				return fmt.Errorf("text finetune: %w", err)
			}
		}
	}
	return nil
}

// Metric names of TextResult.Metrics (see core/experiment).
const (
	MetricTaskBBPC       = "b_bpc"          // task-B test bits per character after fine-tuning
	MetricTaskBBPCBefore = "b_bpc_before"   // task-B test bits per character of the pretrained model
	MetricTaskABPCBefore = "a_bpc_before"   // task-A test bits per character before fine-tuning
	MetricTaskABPCAfter  = "a_bpc_after"    // task-A test bits per character after fine-tuning
	MetricBPCForgetting  = "bpc_forgetting" // a_bpc_after − a_bpc_before (a rise: positive = forgot)
)

// TextResult is what a text fine-tuning run measured, on the (subsets of
// the) test splits.
type TextResult struct {
	Method string `json:"method"`
	Label  string `json:"label"`
	// TaskB is the new corpus's score after fine-tuning, TaskBBefore the
	// pretrained model's on it.
	TaskB       TextScore `json:"b"`
	TaskBBefore TextScore `json:"b_before"`
	// TaskABefore and TaskAAfter are the old corpus's scores before and
	// after; TaskAAfter.KL is the mean KL(p_pretrained ‖ p_finetuned) per
	// position, in nats.
	TaskABefore TextScore `json:"a_before"`
	TaskAAfter  TextScore `json:"a_after"`
	// BPCForgetting is TaskAAfter.BPC − TaskABefore.BPC.
	BPCForgetting float64 `json:"bpc_forgetting"`
	// SampleBefore and SampleAfter are generated by the pretrained and the
	// fine-tuned model with the same settings (Sample): the prompt followed
	// by the generated bytes.
	SampleBefore string       `json:"sample_before"`
	SampleAfter  string       `json:"sample_after"`
	Sample       SampleConfig `json:"sample"`
	// TrainableParams counts the values the run trains, TotalParams the
	// model's.
	TrainableParams int           `json:"trainable_params"`
	TotalParams     int           `json:"total_params"`
	Layers          []LayerInfo   `json:"layers"`
	WallTime        time.Duration `json:"wall_time"`
	TrainTime       time.Duration `json:"train_time"`
	PretrainTime    time.Duration `json:"pretrain_time,omitempty"`
	Pretrained      string        `json:"pretrained"`
	PretrainCached  bool          `json:"pretrain_cached"`
	// PretrainTest is task A's test score recorded with the checkpoint,
	// PretrainSeconds its training time (whichever run trained it).
	PretrainTest    TextScore       `json:"pretrain_test"`
	PretrainSeconds float64         `json:"pretrain_seconds"`
	Resumed         bool            `json:"resumed,omitempty"`
	Curves          []TextEvalPoint `json:"curves"`
	Fingerprint     string          `json:"fingerprint"`
	// RunDir is where the analysis files were written ("" if none).
	RunDir string `json:"run_dir,omitempty"`
}

// Metrics returns the final scalar metrics by name.
func (r TextResult) Metrics() map[string]float64 {
	return map[string]float64{
		MetricTaskBBPC: r.TaskB.BPC, MetricTaskBBPCBefore: r.TaskBBefore.BPC,
		MetricTaskABPCBefore: r.TaskABefore.BPC, MetricTaskABPCAfter: r.TaskAAfter.BPC,
		MetricBPCForgetting: r.BPCForgetting, MetricKL: r.TaskAAfter.KL,
		MetricTrainableParams: float64(r.TrainableParams), MetricWallSeconds: r.WallTime.Seconds(),
		MetricTrainSeconds: r.TrainTime.Seconds(),
	}
}

// CurveSeries returns the curves by name against the (fractional) epoch:
// "train_loss" (nats per token), "train_bpc", "train_acc" (%), "lr", and
// the evaluations "b_bpc", "a_bpc", "a_kl", which start at epoch 0 with
// the pretrained model's values.
func (r TextResult) CurveSeries() map[string][]CurvePoint {
	out := map[string][]CurvePoint{
		MetricTaskBBPC: {{0, r.TaskBBefore.BPC}},
		"a_bpc":        {{0, r.TaskABefore.BPC}},
		MetricKL:       {{0, 0}},
	}
	for k, pts := range textCurveSeries(r.Curves) {
		out[k] = append(out[k], pts...)
	}
	return out
}

func textCurveSeries(curves []TextEvalPoint) map[string][]CurvePoint {
	out := map[string][]CurvePoint{}
	for _, p := range curves {
		out["train_loss"] = append(out["train_loss"], CurvePoint{p.Epoch, p.TrainLoss})
		out["train_bpc"] = append(out["train_bpc"], CurvePoint{p.Epoch, p.TrainLoss / math.Ln2})
		out["train_acc"] = append(out["train_acc"], CurvePoint{p.Epoch, p.TrainAccuracy})
		out["lr"] = append(out["lr"], CurvePoint{p.Epoch, p.LearningRate})
		for k, v := range p.Eval {
			out[k] = append(out[k], CurvePoint{p.Epoch, v})
		}
	}
	return out
}

// fingerprint hashes the run's configuration with the pretrained key and
// task B's data checksum.
func (c TextFinetuneConfig) fingerprint(pretrainedKey, checksum string) (string, error) {
	cfg := c
	cfg.Targets = c.targets()
	h, _, err := hashJSON("prism-finetune-text", struct {
		Schema     int                `json:"schema"`
		Pretrained string             `json:"pretrained"`
		Checksum   string             `json:"data_checksum"`
		Config     TextFinetuneConfig `json:"config"`
	}{SchemaVersion, pretrainedKey, checksum, cfg})
	return h, err
}

// FinetuneText pretrains (or loads from the cache) the language model on
// task A, measures it on both corpora and samples from it, fine-tunes it on
// task B with the configured method, and measures and samples again:
//
//	b_bpc          = bits per character on task B's test windows after fine-tuning
//	bpc_forgetting = bpc_A(after) − bpc_A(before)    (on task A's test windows)
//	a_kl           = mean over task-A test positions of KL(p_before ‖ p_after), nats
//
// Checkpoints and resumption work as in Finetune (CacheDir/runs/FINGERPRINT/).
func FinetuneText(goctx context.Context, cfg TextFinetuneConfig, o Options) (TextResult, error) {
	started := time.Now()
	if err := cfg.Validate(); err != nil {
		return TextResult{}, err
	}
	m := cfg.Pretrain.Model
	pre, err := PretrainText(goctx, cfg.Pretrain, o)
	if err != nil {
		return TextResult{}, err
	}
	res := TextResult{Method: cfg.Method, Label: cfg.AdapterConfig().String(), Pretrained: pre.Key, PretrainCached: pre.Cached,
		PretrainTest: pre.Test, PretrainSeconds: pre.Seconds, Sample: cfg.Sample}
	if !pre.Cached {
		res.PretrainTime = time.Duration(pre.Seconds * float64(time.Second))
		started = time.Now()
	}
	dataB, err := o.open(goctx, cfg.Task)
	if err != nil {
		return res, err
	}
	dataA, err := o.open(goctx, cfg.Pretrain.Task)
	if err != nil {
		return res, err
	}
	checksumB, err := textChecksum(dataB)
	if err != nil {
		return res, err
	}
	if err := checkVocab(dataB, m); err != nil {
		return res, err
	}
	if res.Fingerprint, err = cfg.fingerprint(pre.Key, checksumB); err != nil {
		return res, err
	}
	trainB, err := loadTextSplit(dataB, datasets.Train, m.Context, cfg.TrainSubset)
	if err != nil {
		return res, err
	}
	testB, err := loadTextSplit(dataB, datasets.Test, m.Context, cfg.TestSubset)
	if err != nil {
		return res, err
	}
	testA, err := loadTextSplit(dataA, datasets.Test, m.Context, cfg.OldTestSubset)
	if err != nil {
		return res, err
	}
	b, err := o.newBackend()
	if err != nil {
		return res, err
	}
	rep := newReporter(o.Callbacks, o.Quiet)
	batch := textEvalBatch(o, m)

	// The pretrained model: its scores on both corpora, task A's logits
	// (the reference of the KL) and a sample.
	ctx := mlctx.New()
	mctx := ctx.In(ModelScope)
	if err := pre.Load(ctx); err != nil {
		return res, err
	}
	models.SetSeed(mctx, int64(cfg.Hyper.Seed))
	var baseExec *mlctx.Exec
	var baseA []float32
	if res.TaskABefore, baseA, err = scoreText(b, ctx, m, models.Dense, testA, batch, &baseExec, nil, true); err != nil {
		return res, err
	}
	if res.TaskBBefore, _, err = scoreText(b, ctx, m, models.Dense, testB, batch, &baseExec, nil, false); err != nil {
		return res, err
	}
	sample, err := GenerateText(b, ctx, m, models.Dense, cfg.Sample)
	if err != nil {
		return res, err
	}
	res.SampleBefore = string(sample)

	// What trains.
	for v := range ctx.IterVariables() {
		v.SetTrainable(false)
	}
	plan := adapter.NewPlan(cfg.AdapterConfig(), cfg.targets()...)
	var probeSet textWindows
	var probes map[string]lowrank.Matrix[float64]
	if cfg.RunDir != "" {
		// The layers' inputs in the pretrained model, before Attach replaces W by Wres.
		assigned, err := plan.Resolve(textLayers(m))
		if err != nil {
			return res, err
		}
		n := cfg.ProbeWindows
		if n == 0 {
			n = DefaultProbeWindows
		}
		probeSet = testA.first(n)
		if probes, err = textProbes(b, mctx, m, probeSet, assigned); err != nil {
			return res, err
		}
	}
	adapted, err := adapter.Attach(goctx, mctx, plan, textLayers(m), adapter.Options{KeepSVD: cfg.RunDir != ""})
	if err != nil {
		return res, err
	}
	trainHead := cfg.Method == adapter.MethodHead || cfg.TrainHead
	for v := range ctx.IterVariables() {
		name, ok := ParameterName(v.Scope(), v.Name())
		switch {
		case !ok:
		case cfg.Method == adapter.MethodFull:
			v.SetTrainable(true)
		case trainHead && strings.HasPrefix(name, models.LMHead+"."):
			v.SetTrainable(true)
		}
	}
	linear := adapted.Linear(models.Dense)
	for _, l := range adapted.Layers() {
		res.Layers = append(res.Layers, LayerInfo{Name: l.Name, Out: l.Out, In: l.In, Start: l.Start,
			Rank: l.Config.Rank, TrainableParams: l.TrainableParams()})
	}

	cache, err := o.cacheDir()
	if err != nil {
		return res, err
	}
	ckpt := filepath.Join(cache, "runs", res.Fingerprint, "state.safetensors")
	_, statErr := os.Stat(ckpt)
	res.Resumed = statErr == nil
	l := &lmLoop{
		phase: "finetune", backend: b, ctx: ctx, model: m, linear: linear, train: trainB,
		evals: []textEvalSpec{
			{key: MetricTaskBBPC, data: testB},
			{key: "a_bpc", klKey: MetricKL, data: testA, base: baseA},
		},
		hyper: cfg.Hyper, evalEvery: cfg.EvalEvery, checkpoint: ckpt, every: o.every(), fingerprint: res.Fingerprint,
		report: rep, evalBatch: batch,
	}
	if o.afterStep != nil {
		l.afterStep = func(step int) { o.afterStep("finetune", step) }
	}
	rep.logf("fine-tuning the language model on %s with %s (%d windows of %d bytes, %s)", cfg.Task, res.Label, trainB.Len(), m.Context, epochsText(cfg.Hyper.Epochs))
	curves, took, err := l.run(goctx)
	if err != nil {
		return res, err
	}
	res.Curves, res.TrainTime = curves, took
	var ok bool
	if res.TaskB, ok = l.last[MetricTaskBBPC]; !ok {
		if res.TaskB, err = l.score(l.evals[0]); err != nil {
			return res, err
		}
	}
	if res.TaskAAfter, ok = l.last["a_bpc"]; !ok {
		if res.TaskAAfter, err = l.score(l.evals[1]); err != nil {
			return res, err
		}
	}
	res.BPCForgetting = res.TaskAAfter.BPC - res.TaskABefore.BPC
	if sample, err = GenerateText(b, ctx, m, linear, cfg.Sample); err != nil {
		return res, err
	}
	res.SampleAfter = string(sample)
	for v := range mctx.IterVariables() {
		if _, ok := ParameterName(v.Scope(), v.Name()); !ok {
			continue
		}
		res.TotalParams += v.Shape().Size()
		if v.Trainable {
			res.TrainableParams += v.Shape().Size()
		}
	}
	res.WallTime = time.Since(started)
	if cfg.RunDir != "" {
		res.RunDir = cfg.RunDir
		_, after, err := scoreText(b, ctx, m, linear, probeSet, batch, &l.evaluator, nil, true)
		if err != nil {
			return res, err
		}
		targets := make([]int, 0, probeSet.Tokens())
		for i := range probeSet.Len() {
			_, y := probeSet.window(i)
			for _, t := range y {
				targets = append(targets, int(t))
			}
		}
		base := baseA[:probeSet.Tokens()*m.Vocab] // probeSet is testA's first windows
		if err := writeTextRunDir(cfg.RunDir, cfg, res, adapted, mctx, probes, targets, base, after, m.Vocab); err != nil {
			return res, err
		}
	}
	if err := os.RemoveAll(filepath.Dir(ckpt)); err != nil {
		return res, err
	}
	return res, nil
}
