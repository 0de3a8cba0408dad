package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/safetensors"
	"github.com/prism-lora/prism/datasets"
)

// FinetuneConfig is one fine-tuning run: the pretrained model (task A), the
// new task B, the method and its adapter settings, and the optimisation.
// Every field but RunDir and ProbeExamples is part of the run's fingerprint.
type FinetuneConfig struct {
	Pretrain PretrainConfig `json:"pretrain"`
	// Task is the dataset of task B, e.g. "fashion-mnist"; it needs task A's
	// input shape and gets a new head (HeadB).
	Task string `json:"task"`
	// Method is one of adapter.Methods, or the name of External.
	Method string `json:"method"`
	// External, when set, initialises the adapters instead of a built-in
	// method (e.g. a plugin method); its identity and hyperparameters are
	// part of the fingerprint.
	External *ExternalMethod `json:"-"`
	// Rank, Alpha (0 means α = r) and RSLoRA set the adapter's scale.
	Rank   int     `json:"rank,omitempty"`
	Alpha  float64 `json:"alpha,omitempty"`
	RSLoRA bool    `json:"rslora,omitempty"`
	// Window is where method "window" starts (start index or fraction).
	Window lowrank.WindowSpec `json:"window"`
	// SVD is "full" (default) or "randomized".
	SVD string `json:"svd,omitempty"`
	// Targets are layer names or regular expressions of the backbone layers
	// to adapt; empty means every backbone linear layer. For full and head
	// they choose the layers recorded for analysis (full trains every
	// backbone variable, head none).
	Targets []string `json:"targets,omitempty"`
	Hyper   Hyper    `json:"hyper"`
	// TrainSubset and TestSubset restrict task B's splits; OldTestSubset
	// restricts task A's test split used to measure forgetting (0: all).
	TrainSubset   int `json:"train_subset,omitempty"`
	TestSubset    int `json:"test_subset,omitempty"`
	OldTestSubset int `json:"old_test_subset,omitempty"`

	// RunDir, when set, receives what the analysis needs (see WriteRunDir).
	RunDir string `json:"-"`
	// ProbeExamples is the number of task-A test images whose layer inputs
	// go into the run directory; 0 means 256.
	ProbeExamples int `json:"-"`
	// RunDirEpochs also stores the merged weights and task-A logits after
	// every epoch under RunDir/checkpoints/STEP/.
	RunDirEpochs bool `json:"-"`
}

// ExternalMethod is an adapter initialisation from outside core/lowrank,
// such as a plugin method (see adapter.Config.External).
type ExternalMethod struct {
	// Method initialises each targeted layer; FinetuneConfig.Method must be
	// its Metadata().Name.
	Method method.Method
	// Hyper are its hyperparameter values (the method completes defaults).
	Hyper map[string]method.Value
	// Identity names the implementation in the run's fingerprint, e.g.
	// "energy 1.0.0 sha256:…": a changed plugin binary is another run, so a
	// checkpoint of the old one is not resumed.
	Identity string
}

// AdapterConfig is the adapter.Config the run applies to its targets.
func (c FinetuneConfig) AdapterConfig() adapter.Config {
	ac := adapter.Config{Method: c.Method, Rank: c.Rank, Alpha: c.Alpha, RSLoRA: c.RSLoRA, Window: c.Window,
		SVD: c.SVD, Seed: c.Hyper.Seed}
	if c.External != nil {
		ac.External, ac.Hyper = c.External.Method, c.External.Hyper
	}
	return ac
}

// Validate checks the configuration (without loading anything).
func (c FinetuneConfig) Validate() error {
	if err := c.Pretrain.Network.Validate(); err != nil {
		return err
	}
	if c.Task == "" {
		return fmt.Errorf("finetune: no task B (dataset name)")
	}
	if err := c.AdapterConfig().Validate(); err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	if err := c.Hyper.Validate(); err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	for _, t := range c.Targets {
		if _, err := regexp.Compile(t); err != nil {
			return fmt.Errorf("finetune: target %q is not a regular expression: %v", t, err)
		}
	}
	if c.TrainSubset < 0 || c.TestSubset < 0 || c.OldTestSubset < 0 || c.ProbeExamples < 0 {
		return fmt.Errorf("finetune: subset sizes must be ≥ 0 (0 = all)")
	}
	return nil
}

// Result is what a fine-tuning run measured. Accuracies are percentages
// (0–100) on the (subsets of the) test splits.
type Result struct {
	Method string `json:"method"`
	// Label is a short description, e.g. "mid r=8 α=16".
	Label string `json:"label"`
	// TaskBAccuracy is the new task's test accuracy after fine-tuning.
	TaskBAccuracy float64 `json:"b_acc"`
	// TaskAAccuracyBefore/After are the old task's test accuracy with its
	// own (unchanged) head, before and after fine-tuning; Forgetting is
	// Before − After in points.
	TaskAAccuracyBefore float64 `json:"a_acc_before"`
	TaskAAccuracyAfter  float64 `json:"a_acc_after"`
	Forgetting          float64 `json:"forgetting"`
	// MeanKL is the mean KL(p_pretrained ‖ p_finetuned) over task-A test
	// images, in nats.
	MeanKL float64 `json:"a_kl"`
	// TrainableParams counts the values the run trains (adapters, the new
	// head, and for full fine-tuning the whole backbone); TotalParams all
	// the model's values.
	TrainableParams int `json:"trainable_params"`
	TotalParams     int `json:"total_params"`
	// Layers lists the adapted layers and their resolved windows.
	Layers []LayerInfo `json:"layers"`
	// WallTime is the whole run (setup, training, evaluation), excluding
	// pretraining; TrainTime the training loop alone (all sessions when
	// resumed); PretrainTime the pretraining when this run had to do it.
	WallTime     time.Duration `json:"wall_time"`
	TrainTime    time.Duration `json:"train_time"`
	PretrainTime time.Duration `json:"pretrain_time,omitempty"`
	// Pretrained is the cache key of the base model, and PretrainCached
	// whether it came from the cache.
	Pretrained     string `json:"pretrained"`
	PretrainCached bool   `json:"pretrain_cached"`
	// Resumed reports that training continued from a checkpoint.
	Resumed bool `json:"resumed,omitempty"`
	// Curves are the per-epoch statistics (Eval keys "b_acc", "a_acc").
	Curves []EpochStats `json:"curves"`
	// Trace is the training loss and accuracy within epochs
	// (Options.TracePerEpoch points per epoch; nil when not asked for).
	Trace []TracePoint `json:"trace,omitempty"`
	// Fingerprint identifies the configuration (hex SHA-256).
	Fingerprint string `json:"fingerprint"`
	// RunDir is where the analysis files were written ("" if none).
	RunDir string `json:"run_dir,omitempty"`
}

// LayerInfo is an adapted layer of a run.
type LayerInfo struct {
	Name            string `json:"name"`
	Out             int    `json:"out"`
	In              int    `json:"in"`
	Start           int    `json:"start"` // window start (window methods)
	Rank            int    `json:"rank,omitempty"`
	TrainableParams int    `json:"trainable_params"`
}

// Metric names of Result.Metrics (those of core/experiment).
const (
	MetricTaskBAcc        = "b_acc"
	MetricTaskAAccBefore  = "a_acc_before"
	MetricTaskAAccAfter   = "a_acc_after"
	MetricForgetting      = "forgetting"
	MetricKL              = "a_kl"
	MetricTrainableParams = "trainable_params"
	MetricWallSeconds     = "wall_s"
	MetricTrainSeconds    = "train_s"
)

// Metrics returns the final scalar metrics by name.
func (r Result) Metrics() map[string]float64 {
	return map[string]float64{
		MetricTaskBAcc: r.TaskBAccuracy, MetricTaskAAccBefore: r.TaskAAccuracyBefore,
		MetricTaskAAccAfter: r.TaskAAccuracyAfter, MetricForgetting: r.Forgetting, MetricKL: r.MeanKL,
		MetricTrainableParams: float64(r.TrainableParams), MetricWallSeconds: r.WallTime.Seconds(),
		MetricTrainSeconds: r.TrainTime.Seconds(),
	}
}

// CurvePoint is one value of a per-epoch curve.
type CurvePoint struct {
	Epoch float64
	Value float64
}

// CurveSeries returns the per-epoch curves by name: "train_loss",
// "train_acc", "lr", and one per evaluation ("b_acc", "a_acc").
func (r Result) CurveSeries() map[string][]CurvePoint {
	return curveSeries(r.Curves)
}

func curveSeries(curves []EpochStats) map[string][]CurvePoint {
	out := map[string][]CurvePoint{}
	for _, e := range curves {
		x := float64(e.Epoch)
		out["train_loss"] = append(out["train_loss"], CurvePoint{x, e.TrainLoss})
		out["train_acc"] = append(out["train_acc"], CurvePoint{x, e.TrainAccuracy})
		out["lr"] = append(out["lr"], CurvePoint{x, e.LearningRate})
		keys := make([]string, 0, len(e.Eval))
		for k := range e.Eval {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out[k] = append(out[k], CurvePoint{x, e.Eval[k]})
		}
	}
	return out
}

// fingerprint hashes the run's configuration with the pretrained key and
// task B's data checksum.
func (c FinetuneConfig) fingerprint(pretrainedKey, checksum string) (string, error) {
	net, err := c.Pretrain.Network.configJSON()
	if err != nil {
		return "", err
	}
	cfg := c
	cfg.Targets = c.targets()
	type external struct {
		Identity string                  `json:"identity"`
		Hyper    map[string]method.Value `json:"hyper,omitempty"`
	}
	var ext *external
	if c.External != nil {
		ext = &external{c.External.Identity, c.External.Hyper}
	}
	h, _, err := hashJSON("prism-finetune", struct {
		Schema     int            `json:"schema"`
		Pretrained string         `json:"pretrained"`
		Network    []byte         `json:"network"`
		Checksum   string         `json:"data_checksum"`
		Config     FinetuneConfig `json:"config"`
		External   *external      `json:"external,omitempty"`
	}{SchemaVersion, pretrainedKey, net, checksum, cfg, ext})
	return h, err
}

// targets returns the adapter targets: Targets, or every backbone layer.
func (c FinetuneConfig) targets() []string {
	if len(c.Targets) > 0 {
		return c.Targets
	}
	return c.Pretrain.Network.layerNames()
}

// Finetune pretrains (or loads from the cache) the network on task A, then
// fine-tunes it on task B with a new head and the configured method while
// task A's head stays as it was, and measures learning and forgetting.
//
// Training checkpoints go to CacheDir/runs/FINGERPRINT/ (every
// Options.CheckpointEvery steps and each epoch); a run killed at any point
// and started again with the same configuration continues from its last
// checkpoint and ends with the same result as an uninterrupted one. The
// checkpoint is removed when the run completes.
func Finetune(goctx context.Context, cfg FinetuneConfig, o Options) (Result, error) {
	started := time.Now()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	net := cfg.Pretrain.Network
	pre, err := Pretrain(goctx, cfg.Pretrain, o)
	if err != nil {
		return Result{}, err
	}
	res := Result{Method: cfg.Method, Label: cfg.AdapterConfig().String(), Pretrained: pre.Key, PretrainCached: pre.Cached}
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
	checksumB, err := dataChecksum(dataB)
	if err != nil {
		return res, err
	}
	if res.Fingerprint, err = cfg.fingerprint(pre.Key, checksumB); err != nil {
		return res, err
	}
	trainB, err := loadSplit(dataB, datasets.Train, cfg.TrainSubset, net.InputShape)
	if err != nil {
		return res, err
	}
	testB, err := loadSplit(dataB, datasets.Test, cfg.TestSubset, net.InputShape)
	if err != nil {
		return res, err
	}
	testA, err := loadSplit(dataA, datasets.Test, cfg.OldTestSubset, net.InputShape)
	if err != nil {
		return res, err
	}
	b, err := o.newBackend()
	if err != nil {
		return res, err
	}
	rep := newReporter(o.Callbacks, o.Quiet)

	// The pretrained model and its predictions on task A.
	ctx := mlctx.New()
	mctx := ctx.In(ModelScope)
	if err := pre.Load(ctx); err != nil {
		return res, err
	}
	net.Seed(mctx, int64(cfg.Hyper.Seed))
	baseLogits, err := evalLogits(b, ctx, net, net.plain(), HeadA, pre.Classes, testA, o.evalBatch(), nil)
	if err != nil {
		return res, err
	}
	res.TaskAAccuracyBefore = accuracy(baseLogits, pre.Classes, testA)

	// What trains: nothing of the pretrained model but the method's part.
	for v := range ctx.IterVariables() {
		v.SetTrainable(false)
	}
	if cfg.Method == adapter.MethodFull {
		for v := range ctx.IterVariables() {
			if name, ok := ParameterName(v.Scope(), v.Name()); ok && !strings.HasPrefix(name, HeadA+".") {
				v.SetTrainable(true)
			}
		}
	}
	plan := adapter.NewPlan(cfg.AdapterConfig(), cfg.targets()...)
	var probes []safetensors.Tensor
	if cfg.RunDir != "" {
		// The layers' inputs in the pretrained model, before Attach replaces W by Wres.
		assigned, err := plan.Resolve(net.Layers)
		if err != nil {
			return res, err
		}
		if probes, err = captureProbes(b, ctx, net, assigned, testA, pre.Classes, cfg.ProbeExamples); err != nil {
			return res, err
		}
	}
	adapted, err := adapter.Attach(goctx, mctx, plan, net.Layers, adapter.Options{KeepSVD: cfg.RunDir != ""})
	if err != nil {
		return res, err
	}
	linear := adapted.Linear(net.Dense)
	for _, l := range adapted.Layers() {
		res.Layers = append(res.Layers, LayerInfo{Name: l.Name, Out: l.Out, In: l.In, Start: l.Start,
			Rank: l.Config.Rank, TrainableParams: l.TrainableParams()})
	}

	cache, err := o.cacheDir()
	if err != nil {
		return res, err
	}
	classesB := dataB.Spec().NumClasses()
	ckpt := filepath.Join(cache, "runs", res.Fingerprint, "state.safetensors")
	_, statErr := os.Stat(ckpt)
	res.Resumed = statErr == nil
	l := &loop{
		phase: "finetune", backend: b, ctx: ctx, net: net, linear: linear,
		head: HeadB, classes: classesB, train: trainB,
		evals: []evalSpec{
			{key: MetricTaskBAcc, head: HeadB, classes: classesB, data: testB},
			{key: "a_acc", head: HeadA, classes: pre.Classes, data: testA},
		},
		hyper: cfg.Hyper, checkpoint: ckpt, every: o.every(), fingerprint: res.Fingerprint,
		report: rep, evalBatch: o.evalBatch(), tracePerEpoch: o.TracePerEpoch,
	}
	if o.afterStep != nil {
		l.afterStep = func(step int) { o.afterStep("finetune", step) }
	}
	var rd *runDirWriter
	if cfg.RunDir != "" {
		rd = &runDirWriter{dir: cfg.RunDir, cfg: cfg, adapted: adapted, ctx: mctx, testA: testA, classesA: pre.Classes,
			baseLogits: baseLogits, probes: probes}
		if cfg.RunDirEpochs {
			l.afterEpoch = rd.epoch
		}
	}
	rep.logf("fine-tuning %s on %s with %s (%d examples, %s)", net.Kind, cfg.Task, res.Label, trainB.Len(), epochsText(cfg.Hyper.Epochs))
	curves, took, err := l.run(goctx)
	if err != nil {
		return res, err
	}
	res.Curves, res.TrainTime, res.Trace = curves, took, l.trace
	res.TaskBAccuracy = curves[len(curves)-1].Eval[MetricTaskBAcc]

	// The last epoch evaluated task A already (unless a resumed session had
	// no epoch left to train).
	afterLogits := l.lastEval["a_acc"]
	if afterLogits == nil {
		if afterLogits, err = l.logits(HeadA, pre.Classes, testA); err != nil {
			return res, err
		}
	}
	res.TaskAAccuracyAfter = accuracy(afterLogits, pre.Classes, testA)
	res.Forgetting = res.TaskAAccuracyBefore - res.TaskAAccuracyAfter
	if res.MeanKL, err = MeanKL(baseLogits, afterLogits, pre.Classes); err != nil {
		return res, err
	}
	for v := range mctx.IterVariables() {
		if _, ok := ParameterName(v.Scope(), v.Name()); !ok {
			continue
		}
		res.TotalParams += v.Shape().Size()
		if v.Trainable {
			res.TrainableParams += v.Shape().Size()
		}
	}
	if rd != nil {
		if err := rd.write(goctx, res, afterLogits, l.stepsPerEpoch()); err != nil {
			return res, err
		}
		res.RunDir = cfg.RunDir
	}
	if err := os.RemoveAll(filepath.Dir(ckpt)); err != nil {
		return res, err
	}
	res.WallTime = time.Since(started)
	return res, nil
}
