package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
	"github.com/prism-lora/prism/datasets"
)

// ContinualConfig is a task sequence. Task 0 is the pretraining task
// (Pretrain.Task, trained from scratch and cached as by Pretrain); stages
// 1 … T−1 then train Tasks[0], Tasks[1], … in order, each with the method:
//
//   - stage i attaches a fresh adapter to the targets of the current
//     weights W⁽ⁱ⁻¹⁾ — for window methods a fresh InitFromSVD of W⁽ⁱ⁻¹⁾'s
//     thin SVD, so stage i's window is a window of the merged weights, not of
//     the pretrained ones — and trains it with a new head for task i;
//   - at the end of the stage the adapter is merged into the weights,
//     W⁽ⁱ⁾ = Wres + scale·B·A (DoRA: diag(mag ⊘ ‖W′‖_row)·W′, W′ = Wres + scale·B·A;
//     full: the trained W; head: unchanged), and the adapter is dropped.
//
// Every task keeps its own head (task 0: HeadA, task i: ContinualHead(i)),
// frozen once its stage is over, so every task seen so far is evaluated
// after every stage: Accuracy[i][j] (j ≤ i) is the accuracy on task j after
// stage i. Every field but RunDir and ProbeExamples is part of the run's
// fingerprint.
type ContinualConfig struct {
	// Pretrain trains task 0 (a dataset name).
	Pretrain PretrainConfig `json:"pretrain"`
	// Tasks are the tasks of stages 1, 2, …: dataset names or derived tasks
	// BASE/TRANSFORM (see OpenTask), with the input shape of task 0.
	Tasks []string `json:"tasks"`
	// Method is one of adapter.Methods; Rank, Alpha (0: α = r), RSLoRA,
	// Window (method "window"), SVD and Targets are as in FinetuneConfig and
	// apply to every stage.
	Method  string             `json:"method"`
	Rank    int                `json:"rank,omitempty"`
	Alpha   float64            `json:"alpha,omitempty"`
	RSLoRA  bool               `json:"rslora,omitempty"`
	Window  lowrank.WindowSpec `json:"window"`
	SVD     string             `json:"svd,omitempty"`
	Targets []string           `json:"targets,omitempty"`
	// Hyper is the optimisation of every stage; stage i uses the seed
	// StageSeed(Hyper.Seed, i) for its data order, its adapter's random
	// parts and its head.
	Hyper Hyper `json:"hyper"`
	// TrainSubset restricts the training split of tasks 1…T−1; TestSubset
	// the test split of every task, task 0 included (0: all).
	TrainSubset int `json:"train_subset,omitempty"`
	TestSubset  int `json:"test_subset,omitempty"`

	// RunDir, when set, receives the analysis files of the whole sequence
	// (see WriteContinualRunDir's layout in continual_rundir.go).
	RunDir string `json:"-"`
	// ProbeExamples is the number of task-0 test images whose layer inputs
	// go into the run directory; 0 means 256.
	ProbeExamples int `json:"-"`
}

// StageSeed is the seed of stage i ≥ 1 of a sequence seeded by seed:
// seed + i − 1 (stage 1 uses the configured seed itself).
func StageSeed(seed uint64, stage int) uint64 { return seed + uint64(stage-1) }

// ContinualHead is the head of task i of a sequence: HeadA for task 0,
// "head_task{i}" after.
func ContinualHead(task int) string {
	if task == 0 {
		return HeadA
	}
	return fmt.Sprintf("head_task%d", task)
}

// TaskAccuracyKey is the EpochStats.Eval key of task j's test accuracy in a
// sequence's curves: "acc_t{j}".
func TaskAccuracyKey(task int) string { return fmt.Sprintf("acc_t%d", task) }

// AdapterConfig is the adapter.Config of the given stage (its seed is the
// stage's seed).
func (c ContinualConfig) AdapterConfig(stage int) adapter.Config {
	return adapter.Config{Method: c.Method, Rank: c.Rank, Alpha: c.Alpha, RSLoRA: c.RSLoRA, Window: c.Window,
		SVD: c.SVD, Seed: StageSeed(c.Hyper.Seed, stage)}
}

// AllTasks lists the T task names: Pretrain.Task, then Tasks.
func (c ContinualConfig) AllTasks() []string {
	return append([]string{c.Pretrain.Task}, c.Tasks...)
}

// targets returns the adapter targets: Targets, or every backbone layer.
func (c ContinualConfig) targets() []string {
	if len(c.Targets) > 0 {
		return c.Targets
	}
	return c.Pretrain.Network.layerNames()
}

// Validate checks the configuration (without loading anything).
func (c ContinualConfig) Validate() error {
	if err := c.Pretrain.Network.Validate(); err != nil {
		return err
	}
	if c.Pretrain.Task == "" {
		return fmt.Errorf("continual: no task 0 (pretraining dataset name)")
	}
	if len(c.Tasks) == 0 {
		return fmt.Errorf("continual: no tasks after pretraining (want at least one)")
	}
	for i, t := range c.Tasks {
		base, transform := SplitTaskName(t)
		if base == "" {
			return fmt.Errorf("continual: task %d %q has no dataset name", i+1, t)
		}
		if transform != "" {
			if _, err := pixelMap(t, transform, 1, 1); err != nil {
				return fmt.Errorf("continual: %w", err)
			}
		}
	}
	if err := c.AdapterConfig(1).Validate(); err != nil {
		return fmt.Errorf("continual: %w", err)
	}
	if err := c.Hyper.Validate(); err != nil {
		return fmt.Errorf("continual: %w", err)
	}
	for _, t := range c.Targets {
		if _, err := regexp.Compile(t); err != nil {
			return fmt.Errorf("continual: target %q is not a regular expression: %v", t, err)
		}
	}
	if c.TrainSubset < 0 || c.TestSubset < 0 || c.ProbeExamples < 0 {
		return fmt.Errorf("continual: subset sizes must be ≥ 0 (0 = all)")
	}
	return nil
}

// ContinualResult is what a task sequence measured. Accuracies are
// percentages (0–100) on the (subsets of the) test splits.
type ContinualResult struct {
	Method string `json:"method"`
	// Label is a short description, e.g. "mid r=8 α=16".
	Label string `json:"label"`
	// Tasks are the T task names in training order (task 0 first).
	Tasks []string `json:"tasks"`
	// Accuracy is the lower triangle of the accuracy matrix: Accuracy[i][j]
	// (j ≤ i, so row i has i+1 entries) is task j's test accuracy after
	// stage i, with task j's own head. Row 0 is the pretrained model.
	Accuracy [][]float64 `json:"accuracy"`
	// Stages are stages 1 … T−1.
	Stages []StageResult `json:"stages"`
	// WallTime is this call (excluding pretraining), TrainTime the stages'
	// training loops (all sessions), PretrainTime the pretraining when this
	// call had to do it.
	WallTime     time.Duration `json:"wall_time"`
	TrainTime    time.Duration `json:"train_time"`
	PretrainTime time.Duration `json:"pretrain_time,omitempty"`
	// Pretrained is the cache key of task 0's model, PretrainCached whether
	// it came from the cache.
	Pretrained     string `json:"pretrained"`
	PretrainCached bool   `json:"pretrain_cached"`
	// Fingerprint identifies the configuration (hex SHA-256).
	Fingerprint string `json:"fingerprint"`
	// RunDir is where the analysis files were written ("" if none).
	RunDir string `json:"run_dir,omitempty"`
}

// StageResult is one stage of a sequence.
type StageResult struct {
	Stage int    `json:"stage"`
	Task  string `json:"task"`
	Head  string `json:"head"`
	// Accuracy is row Stage of the accuracy matrix (tasks 0…Stage, %).
	Accuracy []float64 `json:"accuracy"`
	// Layers are the adapted layers with the windows resolved on this
	// stage's weights.
	Layers []LayerInfo `json:"layers"`
	// TrainableParams counts what the stage trains (adapters or backbone,
	// and the new head).
	TrainableParams int `json:"trainable_params"`
	// Steps is the stage's number of optimisation steps.
	Steps int `json:"steps"`
	// Curves are per epoch; Eval holds TaskAccuracyKey(j) for j ≤ Stage.
	Curves    []EpochStats  `json:"curves"`
	TrainTime time.Duration `json:"train_time"`
	// Resumed: the stage continued from a checkpoint; Cached: a finished
	// stage of an interrupted earlier call was reused.
	Resumed bool `json:"resumed,omitempty"`
	Cached  bool `json:"cached,omitempty"`
}

// continualTask is one task of a running sequence.
type continualTask struct {
	name    string
	head    string
	classes int
	train   examples // empty for task 0
	test    examples
}

// continualRun is what the stages of one Continual call share.
type continualRun struct {
	cfg         ContinualConfig
	o           Options
	net         Network
	backend     backends.Backend
	pre         *Pretrained
	tasks       []continualTask
	fingerprint string
	stateDir    string // CacheDir/runs/FINGERPRINT: per-stage checkpoints and finished stages
	rep         *reporter
}

// newContinualRun validates cfg, pretrains (or loads) task 0 and loads
// every task's data.
func newContinualRun(goctx context.Context, cfg ContinualConfig, o Options) (*continualRun, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &continualRun{cfg: cfg, o: o, net: cfg.Pretrain.Network, rep: newReporter(o.Callbacks, o.Quiet)}
	var err error
	if r.pre, err = Pretrain(goctx, cfg.Pretrain, o); err != nil {
		return nil, err
	}
	checksums := make([]string, 0, len(cfg.Tasks)+1)
	for i, name := range cfg.AllTasks() {
		var d datasets.InMemory
		if i == 0 {
			d, err = o.open(goctx, name)
		} else {
			d, err = OpenTask(goctx, name, o.Open)
		}
		if err != nil {
			return nil, err
		}
		sum, err := dataChecksum(d)
		if err != nil {
			return nil, err
		}
		checksums = append(checksums, sum)
		t := continualTask{name: name, head: ContinualHead(i), classes: d.Spec().NumClasses()}
		if i > 0 {
			if t.train, err = loadSplit(d, datasets.Train, cfg.TrainSubset, r.net.InputShape); err != nil {
				return nil, err
			}
		}
		if t.test, err = loadSplit(d, datasets.Test, cfg.TestSubset, r.net.InputShape); err != nil {
			return nil, err
		}
		r.tasks = append(r.tasks, t)
	}
	if r.fingerprint, err = cfg.fingerprint(r.pre.Key, checksums); err != nil {
		return nil, err
	}
	cache, err := o.cacheDir()
	if err != nil {
		return nil, err
	}
	r.stateDir = filepath.Join(cache, "runs", r.fingerprint)
	if r.backend, err = o.newBackend(); err != nil {
		return nil, err
	}
	return r, nil
}

// fingerprint hashes the configuration with the pretrained key and every
// task's data checksum.
func (c ContinualConfig) fingerprint(pretrainedKey string, checksums []string) (string, error) {
	net, err := c.Pretrain.Network.configJSON()
	if err != nil {
		return "", err
	}
	cfg := c
	cfg.Targets = c.targets()
	h, _, err := hashJSON("prism-continual", struct {
		Schema     int             `json:"schema"`
		Pretrained string          `json:"pretrained"`
		Network    json.RawMessage `json:"network"`
		Checksums  []string        `json:"data_checksums"`
		Config     ContinualConfig `json:"config"`
	}{SchemaVersion, pretrainedKey, net, checksums, cfg})
	return h, err
}

// Continual pretrains (or loads from the cache) the network on task 0, then
// trains the tasks of cfg.Tasks one after the other with the method, merging
// the adapter into the weights after every stage and initialising the next
// stage's adapter from the merged weights (see ContinualConfig), and
// evaluates every task seen after every stage.
//
// Each stage checkpoints like Finetune (CacheDir/runs/FINGERPRINT/stage-i.partial/)
// and a finished stage is kept (merged weights, accuracies) under
// CacheDir/runs/FINGERPRINT/stage-i/ until the whole sequence is done, so a
// sequence killed at any point and started again continues where it
// stopped and ends with the numbers of an uninterrupted one.
func Continual(goctx context.Context, cfg ContinualConfig, o Options) (ContinualResult, error) {
	started := time.Now()
	r, err := newContinualRun(goctx, cfg, o)
	if err != nil {
		return ContinualResult{}, err
	}
	res := ContinualResult{Method: cfg.Method, Label: cfg.AdapterConfig(1).String(), Tasks: cfg.AllTasks(),
		Pretrained: r.pre.Key, PretrainCached: r.pre.Cached, Fingerprint: r.fingerprint}
	if !r.pre.Cached {
		res.PretrainTime = time.Duration(r.pre.Seconds * float64(time.Second))
		started = time.Now()
	}

	// Stage 0: the pretrained model on task 0.
	ctx := mlctx.New()
	if err := r.pre.Load(ctx); err != nil {
		return res, err
	}
	t0 := r.tasks[0]
	baseLogits, err := evalLogits(r.backend, ctx, r.net, r.net.plain(), t0.head, t0.classes, t0.test, o.evalBatch(), nil)
	if err != nil {
		return res, err
	}
	res.Accuracy = append(res.Accuracy, []float64{accuracy(baseLogits, t0.classes, t0.test)})
	var probes []safetensors.Tensor
	if cfg.RunDir != "" {
		assigned, err := adapter.NewPlan(cfg.AdapterConfig(1), cfg.targets()...).Resolve(r.net.Layers)
		if err != nil {
			return res, err
		}
		if probes, err = captureProbes(r.backend, ctx, r.net, assigned, t0.test, t0.classes, cfg.ProbeExamples); err != nil {
			return res, err
		}
	}

	model := r.pre.ModelPath
	var stages []stageRecord
	for i := 1; i < len(r.tasks); i++ {
		rec, err := r.stage(goctx, i, model)
		if err != nil {
			return res, err
		}
		stages = append(stages, rec)
		res.Accuracy = append(res.Accuracy, rec.Accuracy)
		res.Stages = append(res.Stages, rec.StageResult)
		res.TrainTime += rec.TrainTime
		model = rec.model()
	}
	res.WallTime = time.Since(started)
	if cfg.RunDir != "" {
		if err := r.writeRunDir(res, baseLogits, probes, stages); err != nil {
			return res, err
		}
		res.RunDir = cfg.RunDir
	}
	if err := os.RemoveAll(r.stateDir); err != nil {
		return res, err
	}
	res.WallTime = time.Since(started)
	return res, nil
}

// stageRecord is a finished stage as stored in its directory.
type stageRecord struct {
	StageResult
	dir string
}

// Files of a finished stage's directory.
const (
	stageModelFile  = "model.safetensors"  // the merged model (every /model variable, no adapters)
	stageLogitsFile = "logits.safetensors" // "task0.logits" [N, C]: task 0's test logits after the stage
	stageRecordFile = "stage.json"         // the StageResult
)

func (s stageRecord) model() string { return filepath.Join(s.dir, stageModelFile) }

// stageDir is where stage i's finished state is kept.
func (r *continualRun) stageDir(stage int) string {
	return filepath.Join(r.stateDir, fmt.Sprintf("stage-%d", stage))
}

// readStageRecord loads a finished stage; fs.ErrNotExist when there is none.
func readStageRecord(dir string) (stageRecord, error) {
	data, err := os.ReadFile(filepath.Join(dir, stageRecordFile))
	if err != nil {
		return stageRecord{}, err
	}
	rec := stageRecord{dir: dir}
	if err := json.Unmarshal(data, &rec.StageResult); err != nil {
		return rec, fmt.Errorf("continual: finished stage %s: %s: %w (delete the directory to redo the stage)", dir, stageRecordFile, err)
	}
	return rec, nil
}

// attach builds stage i's model: a fresh context holding the model stored
// at model (the previous stage's merged weights, every head so far), every
// variable frozen, then the method attached to the targets — for window
// methods from the SVD of these weights — with the stage's seed, and for
// full fine-tuning every backbone variable trainable (heads stay frozen).
// The new head is created, trainable, when the training graph is built.
func (r *continualRun) attach(goctx context.Context, stage int, model string, keepSVD bool) (*mlctx.Context, *adapter.Adapted, error) {
	ctx := mlctx.New()
	mctx := ctx.In(ModelScope)
	if _, err := LoadModel(model, ctx); err != nil {
		return nil, nil, err
	}
	r.net.Seed(mctx, int64(StageSeed(r.cfg.Hyper.Seed, stage)))
	heads := map[string]bool{}
	for _, t := range r.tasks {
		heads[t.head] = true
	}
	for v := range ctx.IterVariables() {
		v.SetTrainable(false)
		if r.cfg.Method != adapter.MethodFull {
			continue
		}
		if name, ok := ParameterName(v.Scope(), v.Name()); ok && !heads[strings.TrimSuffix(name, "."+v.Name())] {
			v.SetTrainable(true)
		}
	}
	plan := adapter.NewPlan(r.cfg.AdapterConfig(stage), r.cfg.targets()...)
	adapted, err := adapter.Attach(goctx, mctx, plan, r.net.Layers, adapter.Options{KeepSVD: keepSVD})
	if err != nil {
		return nil, nil, fmt.Errorf("continual: stage %d: %w", stage, err)
	}
	return ctx, adapted, nil
}

// evals are the end-of-epoch evaluations of stage i: every task j ≤ i with
// its own head.
func (r *continualRun) evals(stage int) []evalSpec {
	var out []evalSpec
	for j := 0; j <= stage; j++ {
		t := r.tasks[j]
		out = append(out, evalSpec{key: TaskAccuracyKey(j), head: t.head, classes: t.classes, data: t.test})
	}
	return out
}

// stage runs stage i from the model file of stage i−1, or returns the
// stage's stored result when an earlier call finished it.
func (r *continualRun) stage(goctx context.Context, stage int, model string) (stageRecord, error) {
	dir := r.stageDir(stage)
	if rec, err := readStageRecord(dir); err == nil {
		rec.Cached = true
		r.rep.logf("continual: stage %d (%s) finished earlier: %s", stage, rec.Task, dir)
		return rec, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return stageRecord{}, err
	}
	ctx, adapted, rec, logits0, err := r.train(goctx, stage, model)
	if err != nil {
		return stageRecord{}, err
	}
	merged, err := mergedModel(ctx, adapted)
	if err != nil {
		return stageRecord{}, fmt.Errorf("continual: stage %d: merging: %w", stage, err)
	}
	if err := r.storeStage(rec, merged, logits0); err != nil {
		return stageRecord{}, err
	}
	if err := os.RemoveAll(dir + ".partial"); err != nil {
		return stageRecord{}, err
	}
	r.rep.logf("continual: stage %d/%d done: accuracies %v", stage, len(r.tasks)-1, rec.Accuracy)
	return rec, nil
}

// train attaches stage i's adapter to the model file of stage i−1 and
// trains it (resuming from the stage's checkpoint), returning the trained
// context and adapters (not yet merged), the stage's record and task 0's
// test logits after the stage.
func (r *continualRun) train(goctx context.Context, stage int, model string) (*mlctx.Context, *adapter.Adapted, stageRecord, []float32, error) {
	dir := r.stageDir(stage)
	task := r.tasks[stage]
	fail := func(err error) (*mlctx.Context, *adapter.Adapted, stageRecord, []float32, error) {
		return nil, nil, stageRecord{}, nil, err
	}
	ctx, adapted, err := r.attach(goctx, stage, model, false)
	if err != nil {
		return fail(err)
	}
	hyper := r.cfg.Hyper
	hyper.Seed = StageSeed(r.cfg.Hyper.Seed, stage)
	partial := dir + ".partial"
	ckpt := filepath.Join(partial, "state.safetensors")
	_, statErr := os.Stat(ckpt)
	phase := fmt.Sprintf("stage %d/%d", stage, len(r.tasks)-1)
	l := &loop{
		phase: phase, backend: r.backend, ctx: ctx, net: r.net, linear: adapted.Linear(r.net.Dense),
		head: task.head, classes: task.classes, train: task.train, evals: r.evals(stage),
		hyper: hyper, checkpoint: ckpt, every: r.o.every(), fingerprint: fmt.Sprintf("%s/stage-%d", r.fingerprint, stage),
		report: r.rep, evalBatch: r.o.evalBatch(),
	}
	if r.o.afterStep != nil {
		l.afterStep = func(step int) { r.o.afterStep(phase, step) }
	}
	rec := stageRecord{dir: dir, StageResult: StageResult{Stage: stage, Task: task.name, Head: task.head, Resumed: statErr == nil}}
	for _, st := range adapted.Layers() {
		rec.Layers = append(rec.Layers, LayerInfo{Name: st.Name, Out: st.Out, In: st.In, Start: st.Start,
			Rank: st.Config.Rank, TrainableParams: st.TrainableParams()})
	}
	r.rep.logf("continual: %s: training %s on %s with %s (%d examples, %s)", phase, r.net.Kind, task.name,
		r.cfg.AdapterConfig(stage).String(), task.train.Len(), epochsText(hyper.Epochs))
	curves, took, err := l.run(goctx)
	if err != nil {
		return fail(err)
	}
	rec.Curves, rec.TrainTime, rec.Steps = curves, took, l.stepsPerEpoch()*hyper.Epochs

	// Every task seen so far, with its own head (the last epoch evaluated
	// them, unless this session resumed after the last epoch).
	var logits0 []float32
	for j := 0; j <= stage; j++ {
		z := l.lastEval[TaskAccuracyKey(j)]
		if z == nil {
			if z, err = l.logits(r.tasks[j].head, r.tasks[j].classes, r.tasks[j].test); err != nil {
				return fail(err)
			}
		}
		if j == 0 {
			logits0 = z
		}
		rec.Accuracy = append(rec.Accuracy, accuracy(z, r.tasks[j].classes, r.tasks[j].test))
	}
	for v := range ctx.In(ModelScope).IterVariables() {
		if _, ok := ParameterName(v.Scope(), v.Name()); ok && v.Trainable {
			rec.TrainableParams += v.Shape().Size()
		}
	}
	return ctx, adapted, rec, logits0, nil
}

// storeStage writes a finished stage's directory atomically (a temporary
// directory renamed into place).
func (r *continualRun) storeStage(rec stageRecord, merged []safetensors.Tensor, logits0 []float32) error {
	if err := os.MkdirAll(r.stateDir, 0o755); err != nil {
		return fmt.Errorf("continual: %w", err)
	}
	tmp, err := os.MkdirTemp(r.stateDir, ".tmp-"+filepath.Base(rec.dir)+"-")
	if err != nil {
		return fmt.Errorf("continual: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := safetensors.WriteFile(filepath.Join(tmp, stageModelFile), merged,
		map[string]string{"prism_continual": r.fingerprint, "prism_stage": fmt.Sprint(rec.Stage)}); err != nil {
		return fmt.Errorf("continual: stage %d: %w", rec.Stage, err)
	}
	c := r.tasks[0].classes
	if err := safetensors.WriteFile(filepath.Join(tmp, stageLogitsFile),
		[]safetensors.Tensor{safetensors.FromFloats("task0.logits", []int{len(logits0) / c, c}, logits0)}, nil); err != nil {
		return fmt.Errorf("continual: stage %d: %w", rec.Stage, err)
	}
	if err := writeJSON(filepath.Join(tmp, stageRecordFile), rec.StageResult); err != nil {
		return fmt.Errorf("continual: stage %d: %w", rec.Stage, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, rec.dir); err != nil {
		return fmt.Errorf("continual: stage %d: %w", rec.Stage, err)
	}
	return nil
}

// mergedModel returns every model variable of ctx (root) as a tensor named
// by ParameterName, with each adapted layer's adapter merged into its
// weight (adapter.LayerState.Merged, rounded to the variable's dtype) and
// the adapter's own variables (lora_A, lora_B, lora_magnitude) left out:
// the plain network that computes what the adapted one computes.
func mergedModel(ctx *mlctx.Context, adapted *adapter.Adapted) ([]safetensors.Tensor, error) {
	mctx := ctx.In(ModelScope)
	var ts []safetensors.Tensor
	for _, v := range sortedVariables(ctx) {
		name, ok := ParameterName(v.Scope(), v.Name())
		if !ok {
			continue
		}
		if st, isAdapted := adapted.Layer(strings.TrimSuffix(name, "."+v.Name())); isAdapted {
			switch v.Name() {
			case adapter.LoRAAName, adapter.LoRABName, adapter.MagnitudeName:
				continue
			case adapter.WeightName:
				w, err := st.Merged(mctx)
				if err != nil {
					return nil, err
				}
				if st.DType == dtypes.Float64 {
					ts = append(ts, safetensors.FromMatrix(name, w))
				} else {
					ts = append(ts, safetensors.FromMatrix(name, toFloat32(w)))
				}
				continue
			}
		}
		t, err := tensorOf(name, v)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}
