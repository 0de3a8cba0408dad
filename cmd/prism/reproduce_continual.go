package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/continual"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets/catalog"
)

func init() {
	addReproduceCommand(newReproduceContinualCmd)
	if err := experiment.Kinds.Register(continual.Kind); err != nil {
		panic(fmt.Sprintf("registering run kind %q: %v", continual.Name, err))
	}
}

// continualSpecTemplate is the experiment `prism reproduce continual` runs
// (experiments/continual.yaml and continual-quick.yaml hold it with the
// default output and one seed); %[1]s … %[9]s are filled by continualSpec.
const continualSpecTemplate = `# Continual learning (prism reproduce continual%[9]s).
# Task 0 MNIST (pretrained from scratch), then Fashion-MNIST, then MNIST rotated
# by 90° counter-clockwise (mnist/rot90); after each task the adapter is merged
# into the weights and the next task's window comes from the merged weights' SVD.
# Every task keeps its own head (frozen after its stage); every task seen so far
# is evaluated after every stage.
name: continual%[1]s
kind: continual
description: %[2]s
model:
  name: vit
pretrain:
  task: mnist
%[3]s
finetune:
  tasks: [fashion-mnist, mnist/rot90]
  batch_size: 128
%[4]s
adapter:
  svd: full
grid:
  methods: [lora, pissa, window, mid, milora, olora, dora, full, head]
  window_fractions: [0.25, 0.75]
  ranks: [8]
  alphas: [16]
  learning_rates: [%[5]s]
  epochs: [%[6]s]
  seeds: [%[7]s]
output: %[8]s
`

// continualSpec is the spec text of the quick or full setting with the
// given output directory and seeds 0…seeds−1.
func continualSpec(quick bool, out string, seeds int) string {
	flag, suffix, desc := "", "", "full setting — 60,000 training images per task, 2 epochs per stage, full test sets"
	pre := "  epochs: 2\n  learning_rate: 1.5e-3\n  batch_size: 64\n  seed: 1"
	fine := "  params: {}"
	lr, epochs := "1e-3", "2"
	if quick {
		flag, suffix, desc = " --quick", "-quick", "quick setting — 12,000 MNIST images to pretrain, 6,000 training images per task, 1 epoch per stage, 2,000 test images per task"
		pre = "  epochs: 2\n  learning_rate: 4e-3\n  batch_size: 128\n  seed: 1\n  params: {train_subset: 12000, test_subset: 2000}"
		fine = "  params: {train_subset: 6000, test_subset: 2000}"
		lr, epochs = "3e-3", "1"
	}
	s := make([]string, seeds)
	for i := range s {
		s[i] = fmt.Sprint(i)
	}
	return fmt.Sprintf(continualSpecTemplate, suffix, desc, pre, fine, lr, epochs, strings.Join(s, ", "), out, flag)
}

// reproduceContinualOptions are the inputs of `prism reproduce continual`.
type reproduceContinualOptions struct {
	Quick   bool
	Out     string // output directory ("" = results/continual or results/continual-quick)
	Seeds   int    // seeds per configuration
	Workers int    // runs at once (0 = cores / threads per run)
	// SpecText replaces the built-in spec (tests); Kind the registered kind.
	SpecText string
	Kind     *experiment.Kind
	// SkipFetch leaves the data alone (tests that supply their own datasets).
	SkipFetch bool
	Stdout    io.Writer // progress and results
}

func newReproduceContinualCmd() *cobra.Command {
	o := reproduceContinualOptions{Seeds: 1}
	cmd := &cobra.Command{
		Use:   "continual [--quick] [--out DIR]",
		Short: "Continual learning: MNIST → Fashion-MNIST → rotated MNIST, merge after each task, every method",
		Long: `Trains a task sequence with every method and compares what each remembers:
task 0 MNIST (a ViT pretrained from scratch, cached by content), then Fashion-MNIST,
then MNIST rotated by 90° (mnist/rot90). After each task the adapter is merged into
the weights (W ← Wres + scale·B·A; DoRA's rescaled form) and the next task's adapter
is initialised afresh from the merged weights — for window methods from their SVD.
Each task has its own head, frozen after its stage, so every task seen so far is
evaluated after every stage: the accuracy matrix R[i][j] (task j after training
task i). Methods: lora, pissa, window f=0.25, mid, window f=0.75, milora, olora,
dora, full (sequential full fine-tuning) and head (linear probes only), rank 8, α 16.

Runs go through the experiment runner into OUT/results.db (SQLite), so an
interrupted reproduction continues where it stopped (each sequence also resumes
inside, from its last stage and step). Writes:
  OUT/spec.yaml                    the spec that ran ('prism sweep OUT/spec.yaml' reruns it)
  OUT/continual.md, continual.csv  ACC, BWT (Lopez-Paz & Ranzato 2017), forgetting per task
                                   (Chaudhry et al. 2018), final accuracies, accuracy matrices
  OUT/figures/accuracy_matrices    heatmap of every method's accuracy matrix
  OUT/figures/transfer             ACC and BWT per method
  OUT/figures/acc_vs_bwt           ACC against BWT
  OUT/figures/stages               each task's accuracy along the sequence
  OUT/runs/SERIES-ID/              each run's analysis directory ('prism analyze' reads it;
                                   run.json has the accuracy matrix in its continual section)
Figures are written as .svg, .pdf and .png.

--quick pretrains on 12,000 MNIST images and trains each task on 6,000 images for one
epoch (a few minutes on 2 cores); the full setting uses all 60,000 images and two
epochs per stage (see docs/continual.md for measured times and results).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdout = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runReproduceContinual(ctx, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Quick, "quick", false, "the quick setting: data subsets and one epoch per task (minutes)")
	f.StringVar(&o.Out, "out", "", "output directory (default results/continual, or results/continual-quick with --quick)")
	f.IntVar(&o.Seeds, "seeds", o.Seeds, "seeds per method (figures and tables show mean ± std over seeds)")
	f.IntVar(&o.Workers, "workers", 0, "runs executed at once (default: cores / cores per run, i.e. 1)")
	return cmd
}

// runReproduceContinual runs the experiment and writes its outputs.
func runReproduceContinual(ctx context.Context, o reproduceContinualOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	out := o.Stdout
	if out == nil {
		out = io.Discard
	}
	started := time.Now()
	dir := o.Out
	if dir == "" {
		dir = filepath.Join("results", "continual")
		if o.Quick {
			dir += "-quick"
		}
	}
	if o.Seeds < 1 {
		return fmt.Errorf("--seeds %d: want at least 1", o.Seeds)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	text := o.SpecText
	if text == "" {
		text = continualSpec(o.Quick, dir, o.Seeds)
	}
	specPath := filepath.Join(dir, "spec.yaml")
	if err := experiment.WriteFileAtomic(specPath, []byte(text)); err != nil {
		return err
	}
	spec, err := experiment.ParseSpec(specPath, []byte(text))
	if err != nil {
		return err
	}
	kind := continual.Kind
	if o.Kind != nil {
		kind = *o.Kind
	}
	runs, err := spec.Expand()
	if err != nil {
		return err
	}
	if err := spec.ValidateRuns(runs, kind); err != nil {
		return err
	}

	if !o.SkipFetch {
		if err := fetchTaskData(ctx, spec, out); err != nil {
			return err
		}
	}
	db := filepath.Join(dir, "results.db")
	if err := store.CheckLocalFS(db); err != nil {
		return err
	}
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(out, "spec %s: %s; results in %s\n", spec.Name, experiment.Describe(runs), db)
	runCtx := continual.WithRunDirs(ctx, filepath.Join(dir, "runs"))
	sum, err := runner.Sweep(runCtx, st, spec, runs, kind, runner.Options{Workers: o.Workers, Out: out})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted (%s); run the same command again to continue", sum)
	}
	for _, f := range sum.Failures {
		fmt.Fprintf(out, "failed: %s %s: %s\n", experiment.ShortID(f.ID), f.Label, firstLineOf(f.Error))
	}

	results, err := continual.FromStore(ctx, st, store.Filter{Spec: spec.Name})
	if err != nil {
		return err
	}
	series, err := continual.Group(results)
	if err != nil {
		return err
	}
	if len(series) == 0 {
		return fmt.Errorf("no run of spec %s finished; see prism results --db %s --status failed", spec.Name, db)
	}
	written, err := continual.WriteFigures(filepath.Join(dir, "figures"), series)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	if err := continual.WriteMarkdown(&md, series); err != nil {
		return err
	}
	if err := experiment.WriteFileAtomic(filepath.Join(dir, "continual.md"), md.Bytes()); err != nil {
		return err
	}
	var csvBuf bytes.Buffer
	if err := continual.WriteCSV(&csvBuf, series); err != nil {
		return err
	}
	if err := experiment.WriteFileAtomic(filepath.Join(dir, "continual.csv"), csvBuf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s\n", md.String())
	for _, w := range written {
		fmt.Fprintf(out, "figure %s.{svg,pdf,png}\n", w)
	}
	fmt.Fprintf(out, "table %s, %s; run directories in %s (prism analyze DIR…)\n",
		filepath.Join(dir, "continual.md"), filepath.Join(dir, "continual.csv"), filepath.Join(dir, "runs"))
	fmt.Fprintf(out, "done in %s (%s)\n", time.Since(started).Round(time.Second), sum)
	if n := len(sum.Failures); n > 0 {
		return &sweepFailed{n: n, db: db}
	}
	return nil
}

// fetchTaskData makes sure every dataset the spec's tasks use is installed
// and verified (derived tasks use their base dataset).
func fetchTaskData(ctx context.Context, spec *experiment.Spec, out io.Writer) error {
	names := map[string]bool{}
	var order []string
	add := func(task string) {
		base, _ := train.SplitTaskName(task)
		if !names[base] {
			names[base] = true
			order = append(order, base)
		}
	}
	if spec.Pretrain != nil {
		add(spec.Pretrain.Task)
	}
	for _, t := range spec.Finetune.Tasks {
		add(t)
	}
	cs, err := catalog.NewStore("")
	if err != nil {
		return err
	}
	for _, n := range order {
		stat, err := cs.Fetch(ctx, n)
		if err == nil && !stat.Present {
			err = stat.NotPresentError()
		}
		if err != nil {
			return fmt.Errorf("dataset %s: %w", n, err)
		}
		fmt.Fprintf(out, "data %s: %s (%s)\n", n, stat.Dir, stat.Location)
	}
	return nil
}
