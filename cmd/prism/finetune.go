package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/method/hyperparam"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/plugins/host"
)

func init() { addCommand(newFinetuneCmd) }

// finetuneFlags are the flags of `prism finetune` besides the pretraining ones.
type finetuneFlags struct {
	task          string
	method        string
	rank          int
	alpha         float64
	rslora        bool
	start         int
	fraction      float64
	svd           string
	targets       []string
	hyper         train.Hyper
	trainSubset   int
	testSubset    int
	oldTestSubset int
	runDir        string
	probes        int
	runDirEpochs  bool
	params        []string   // NAME=VALUE hyperparameters of a plugin method
	plugins       *host.Host // the host of a plugin method (closed after the run)
}

// closePlugins stops the plugin processes config started.
func (ff *finetuneFlags) closePlugins() {
	if ff.plugins != nil {
		ff.plugins.Close()
		ff.plugins = nil
	}
}

// pluginMethod starts the method plugin called name (built-in names are
// taken first, so this is only asked for others) and returns it as the run's
// external initialisation with the --param values.
func (ff *finetuneFlags) pluginMethod(ctx context.Context, name string) (*train.ExternalMethod, error) {
	h, err := host.New(host.Options{})
	if err != nil {
		return nil, err
	}
	mp, err := h.Method(ctx, name)
	if err != nil {
		defer h.Close()
		if host.FaultOf(err) == host.FaultNotFound {
			names, _ := h.MethodNames()
			var plugins []string
			for _, n := range names {
				if !slices.Contains(adapter.Methods, n) {
					plugins = append(plugins, n)
				}
			}
			installed := "none installed"
			if len(plugins) > 0 {
				installed = "installed: " + strings.Join(plugins, ", ")
			}
			return nil, fmt.Errorf("--method %q is unknown: not built in (%s) and no method plugin of that name (%s; see 'prism plugins list')",
				name, strings.Join(adapter.Methods, ", "), installed)
		}
		return nil, fmt.Errorf("--method %s: %w", name, err)
	}
	md := mp.Metadata()
	hyper, err := hyperparam.Parse(md.Hyperparameters, ff.params)
	if err == nil {
		_, err = hyperparam.Resolve(md.Hyperparameters, hyper)
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("--param: method plugin %s: %w (see 'prism plugins inspect %s')", name, err, name)
	}
	ff.plugins = h
	return &train.ExternalMethod{Method: mp, Hyper: hyper,
		Identity: fmt.Sprintf("%s %s sha256:%s", md.Name, md.Version, mp.Installed().SHA256)}, nil
}

// config resolves the fine-tuning configuration: the preset (quick or not),
// then every flag the user gave.
func (ff *finetuneFlags) config(f *pflag.FlagSet, pre train.PretrainConfig, quick bool) (train.FinetuneConfig, error) {
	if _, err := catalog.Lookup(ff.task); err != nil {
		return train.FinetuneConfig{}, fmt.Errorf("--task: %w", err)
	}
	method := ff.method
	startSet, fractionSet := f.Changed("start"), f.Changed("fraction")
	if startSet && fractionSet {
		return train.FinetuneConfig{}, fmt.Errorf("--start and --fraction both give the window start; use one")
	}
	if (startSet || fractionSet) && !f.Changed("method") {
		method = adapter.MethodWindow
	}
	var external *train.ExternalMethod
	if !slices.Contains(adapter.Methods, method) {
		if startSet || fractionSet {
			return train.FinetuneConfig{}, fmt.Errorf("--start and --fraction apply to --method window, not to the plugin method %s", method)
		}
		var err error
		if external, err = ff.pluginMethod(context.Background(), method); err != nil {
			return train.FinetuneConfig{}, err
		}
	} else if len(ff.params) > 0 {
		return train.FinetuneConfig{}, fmt.Errorf("--param sets a plugin method's hyperparameters; the built-in method %s has none", method)
	}
	c := train.DefaultFinetune(pre, ff.task, method, quick)
	c.External = external
	switch {
	case method == adapter.MethodWindow && startSet:
		if ff.start < 0 {
			return c, fmt.Errorf("--start must be ≥ 0 (got %d)", ff.start)
		}
		c.Window = lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: ff.start}
	case method == adapter.MethodWindow && fractionSet:
		if !(ff.fraction >= 0 && ff.fraction <= 1) {
			return c, fmt.Errorf("--fraction must be in [0, 1] (got %v)", ff.fraction)
		}
		c.Window = lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: ff.fraction}
	case startSet || fractionSet:
		return c, fmt.Errorf("--start and --fraction apply to --method window (--method %s fixes its own window)", method)
	}
	set := func(name string, apply func()) {
		if f.Changed(name) {
			apply()
		}
	}
	set("rank", func() { c.Rank = ff.rank })
	set("alpha", func() { c.Alpha = ff.alpha })
	set("rslora", func() { c.RSLoRA = ff.rslora })
	set("svd", func() { c.SVD = ff.svd })
	set("targets", func() { c.Targets = ff.targets })
	set("epochs", func() { c.Hyper.Epochs = ff.hyper.Epochs })
	set("batch", func() { c.Hyper.BatchSize = ff.hyper.BatchSize })
	set("lr", func() { c.Hyper.LearningRate = ff.hyper.LearningRate })
	set("weight-decay", func() { c.Hyper.WeightDecay = ff.hyper.WeightDecay })
	set("warmup", func() { c.Hyper.Warmup = ff.hyper.Warmup })
	set("clip", func() { c.Hyper.Clip = ff.hyper.Clip })
	set("seed", func() { c.Hyper.Seed = ff.hyper.Seed })
	set("train-subset", func() { c.TrainSubset = ff.trainSubset })
	set("test-subset", func() { c.TestSubset = ff.testSubset })
	set("old-test-subset", func() { c.OldTestSubset = ff.oldTestSubset })
	c.RunDir, c.ProbeExamples, c.RunDirEpochs = ff.runDir, ff.probes, ff.runDirEpochs
	if c.RunDirEpochs && c.RunDir == "" {
		return c, fmt.Errorf("--run-dir-epochs needs --run-dir")
	}
	if !c.AdapterConfig().IsAdapter() {
		for _, name := range []string{"rank", "alpha", "rslora", "svd"} {
			if f.Changed(name) {
				return c, fmt.Errorf("--%s applies to the adapter methods, not --method %s", name, method)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// finetuneOptions are the inputs of `prism finetune`.
type finetuneOptions struct {
	Config  train.FinetuneConfig
	Options train.Options
	JSON    bool
	Stdout  io.Writer
}

func newFinetuneCmd() *cobra.Command {
	cmd, _, _, _ := finetuneCommand()
	return cmd
}

// finetuneCommand builds the command and returns the flag destinations.
func finetuneCommand() (*cobra.Command, *finetuneFlags, *pretrainFlags, *runFlags) {
	var p pretrainFlags
	var r runFlags
	def := train.DefaultFinetuneHyper()
	ff := finetuneFlags{hyper: def}
	cmd := &cobra.Command{
		Use:   "finetune [flags]",
		Short: "Fine-tune the pretrained model on task B with a LoRA-family method and measure forgetting",
		Long: `Fine-tune the model pretrained on task A (MNIST; taken from the cache, or pretrained first
as 'prism pretrain' would) on task B (Fashion-MNIST) with a new classification head, while
task A's head stays as it was, and report what was learned and what was forgotten:

  task B accuracy    test accuracy on the new task
  task A accuracy    before and after, with task A's own head; forgetting = before − after (points)
  mean KL            KL(pretrained ‖ fine-tuned) of the predictions on task A's test images (nats)
  trainable params   adapters + the new head (+ the whole backbone for full)

Methods (DESIGN.md §1), with W = U·diag(S)·Vᵀ and a window of r components starting at s:
  lora     A Kaiming-uniform, B = 0
  pissa    s = 0 (top components)        milora  s = k − r (bottom components)
  mid      s = ⌊(k − r)/2⌋               window  s = --start S, or round(--fraction F · (k − r))
  olora    W = Q·R, B = Q[:, :r], A = R[:r, :]
  dora     LoRA + a learned magnitude over the row-normalised direction (PEFT's DoRA)
  full     every backbone weight trains  head    only the new head trains
  NAME     a method plugin (prism plugins list): it returns A, B and the frozen base per layer,
           checked against W = base + scale·B·A; --param NAME=VALUE sets its hyperparameters
The adapted layer computes y = x·Wresᵀ + scale·(x·Aᵀ)·Bᵀ + b with Wres = W − scale·B·A frozen,
scale = α/r (α/√r with --rslora). --targets chooses the layers (names or regular expressions
over the whole name, repeatable; default: every backbone linear layer, i.e. patch_embed.proj
and blocks.N.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2} of the ViT).

Checkpoints are written during training; a run that is interrupted resumes where it stopped
when started again with the same settings. --run-dir stores what 'prism analyze' reads
(merged weights, the SVD of the pretrained weights, task-A probe inputs, logits).`,
		Example: `  prism finetune --method mid --rank 8 --alpha 16 --lr 1e-3 --epochs 2
  prism finetune --quick --method pissa --json
  prism finetune --fraction 0.25 --rank 8                  # window method, s = round(0.25·(k−r))
  prism finetune --method lora --targets 'blocks\.\d+\.attn\.qkv' --run-dir runs/lora
  prism finetune --method full --lr 3e-4
  prism finetune --method energy --param threshold=0.5    # the reference plugin (make plugins)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pre, err := p.config(cmd.Flags(), r.quick)
			if err != nil {
				return err
			}
			defer ff.closePlugins()
			cfg, err := ff.config(cmd.Flags(), pre, r.quick)
			if err != nil {
				return err
			}
			return runFinetune(cmd.Context(), finetuneOptions{Config: cfg, Options: r.options(), JSON: r.json, Stdout: cmd.OutOrStdout()})
		},
	}
	f := cmd.Flags()
	f.StringVar(&ff.task, "task", train.DefaultTaskB, "dataset of task B, the new task (same image shape as task A)")
	f.StringVar(&ff.method, "method", adapter.MethodMid, "method: "+strings.Join(adapter.Methods, ", ")+", or the name of an installed method plugin ('prism plugins list')")
	f.StringArrayVar(&ff.params, "param", nil, "NAME=VALUE: a hyperparameter of a plugin method (repeatable; 'prism plugins inspect NAME' lists them)")
	f.IntVar(&ff.rank, "rank", 8, "adapter rank r")
	f.Float64Var(&ff.alpha, "alpha", 16, "adapter α; scale = α/r (α/√r with --rslora)")
	f.BoolVar(&ff.rslora, "rslora", false, "rank-stabilised scale α/√r")
	f.IntVar(&ff.start, "start", 0, "window start s (selects --method window unless --method is given)")
	f.Float64Var(&ff.fraction, "fraction", 0.5, "window start as a fraction F of the spectrum, s = round(F·(k−r)) (selects --method window)")
	f.StringVar(&ff.svd, "svd", lowrank.SVDFull, "SVD of the window methods: full or randomized")
	f.StringArrayVar(&ff.targets, "targets", nil, "layer name or regular expression of the layers to adapt (repeatable; default all backbone layers)")
	f.IntVar(&ff.hyper.Epochs, "epochs", def.Epochs, "fine-tuning epochs")
	f.IntVar(&ff.hyper.BatchSize, "batch", def.BatchSize, "fine-tuning batch size")
	f.Float64Var(&ff.hyper.LearningRate, "lr", def.LearningRate, "fine-tuning peak learning rate (AdamW, cosine schedule)")
	f.Float64Var(&ff.hyper.WeightDecay, "weight-decay", def.WeightDecay, "fine-tuning AdamW weight decay")
	f.Float64Var(&ff.hyper.Warmup, "warmup", def.Warmup, "fine-tuning warmup, as a fraction of all steps")
	f.Float64Var(&ff.hyper.Clip, "clip", def.Clip, "bound on the global gradient norm (0: no clipping)")
	f.Uint64Var(&ff.hyper.Seed, "seed", def.Seed, "fine-tuning seed (new head, LoRA's A, data order)")
	f.IntVar(&ff.trainSubset, "train-subset", 0, "train on the first N task-B training examples of a fixed permutation (0: all)")
	f.IntVar(&ff.testSubset, "test-subset", 0, "task-B test examples used (0: all)")
	f.IntVar(&ff.oldTestSubset, "old-test-subset", 0, "task-A test examples used to measure forgetting (0: all)")
	f.StringVar(&ff.runDir, "run-dir", "", "write the run's analysis files (run.json, weights, SVD, probes, logits) to this directory")
	f.IntVar(&ff.probes, "probe-examples", 256, "task-A test images whose layer inputs go into --run-dir")
	f.BoolVar(&ff.runDirEpochs, "run-dir-epochs", false, "also store the merged weights after every epoch under --run-dir/checkpoints/")
	addPretrainFlags(f, &p, "pretrain-")
	addRunFlags(f, &r)
	return cmd, &ff, &p, &r
}

func runFinetune(ctx context.Context, o finetuneOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	res, err := train.Finetune(ctx, o.Config, o.Options)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(o.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			train.Result
			Metrics map[string]float64 `json:"metrics"`
		}{res, res.Metrics()})
	}
	c := o.Config
	tw := tabwriter.NewWriter(o.Stdout, 0, 0, 2, ' ', 0)
	method := res.Label
	if c.AdapterConfig().IsAdapter() {
		method += fmt.Sprintf(" (scale %.4g)", c.AdapterConfig().Scale())
	}
	fmt.Fprintf(tw, "method\t%s\n", method)
	fmt.Fprintf(tw, "model\t%s\n", describeNetwork(c.Pretrain.Network))
	fmt.Fprintf(tw, "task B\t%s\n", describeSubsets(c.Task, c.TrainSubset, c.TestSubset))
	fmt.Fprintf(tw, "task B accuracy\t%.2f%%\n", res.TaskBAccuracy)
	fmt.Fprintf(tw, "task A accuracy\t%.2f%% → %.2f%% (forgetting %.2f points; %s, test: %s)\n",
		res.TaskAAccuracyBefore, res.TaskAAccuracyAfter, res.Forgetting, c.Pretrain.Task, subsetText(c.OldTestSubset))
	fmt.Fprintf(tw, "mean KL on task A\t%.4f nats\n", res.MeanKL)
	fmt.Fprintf(tw, "trainable params\t%d of %d (%.2f%%)\n", res.TrainableParams, res.TotalParams,
		100*float64(res.TrainableParams)/float64(res.TotalParams))
	fmt.Fprintf(tw, "adapted layers\t%s\n", describeLayers(res.Layers, c.AdapterConfig().IsWindow() || c.AdapterConfig().IsExternal()))
	pre := "pretrained model from the cache"
	if !res.PretrainCached {
		pre = fmt.Sprintf("pretraining took %s", roundDuration(res.PretrainTime))
	}
	resumed := ""
	if res.Resumed {
		resumed = ", resumed from a checkpoint"
	}
	fmt.Fprintf(tw, "time\t%s (training %s%s; %s)\n", roundDuration(res.WallTime), roundDuration(res.TrainTime), resumed, pre)
	if res.RunDir != "" {
		fmt.Fprintf(tw, "run dir\t%s\n", res.RunDir)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeCurves(o.Stdout, res.Curves)
}

// describeLayers summarises the adapted layers (and their window starts).
func describeLayers(layers []train.LayerInfo, window bool) string {
	if len(layers) == 0 {
		return "none"
	}
	if !window {
		names := make([]string, len(layers))
		for i, l := range layers {
			names[i] = l.Name
		}
		if len(names) > 6 {
			return fmt.Sprintf("%d (%s, …, %s)", len(names), strings.Join(names[:3], ", "), names[len(names)-1])
		}
		return fmt.Sprintf("%d (%s)", len(names), strings.Join(names, ", "))
	}
	// Group by the window start and the number of components k.
	type group struct{ start, k int }
	count := map[group]int{}
	var order []group
	for _, l := range layers {
		g := group{l.Start, min(l.Out, l.In)}
		if count[g] == 0 {
			order = append(order, g)
		}
		count[g]++
	}
	parts := make([]string, len(order))
	for i, g := range order {
		parts[i] = fmt.Sprintf("%d× s=%d of k=%d", count[g], g.start, g.k)
	}
	return fmt.Sprintf("%d, windows %s", len(layers), strings.Join(parts, "; "))
}
