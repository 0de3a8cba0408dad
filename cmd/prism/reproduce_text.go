package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot/vg"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/finetunetext"
	"github.com/prism-lora/prism/core/experiment/plots"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/figure"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets/catalog"
)

func init() {
	addReproduceCommand(newReproduceTextCmd)
	if err := experiment.Kinds.Register(finetunetext.Kind); err != nil {
		panic(fmt.Sprintf("registering run kind %q: %v", finetunetext.Name, err))
	}
}

// reproduceTextOptions are the inputs of `prism reproduce text`.
type reproduceTextOptions struct {
	Quick    bool   // the quick setting (text-quick.yaml) instead of the full one (text.yaml)
	OutDir   string // results, figures and report ("" = results/<spec name>)
	SpecFile string // a spec of kind finetune-text instead of the built-in one
	Workers  int    // parallel runs (0: sized to the machine, 1 here)
	CacheDir string // pretrained models and run checkpoints ("" = $PRISM_CACHE_DIR or ~/.cache/prism)
	Analysis bool   // write each run's analysis directory and analyse them (prism analyze)
	Out      io.Writer
	Live     *bool // runner display (nil: detect a terminal)
}

func newReproduceTextCmd() *cobra.Command {
	var o reproduceTextOptions
	cmd := &cobra.Command{
		Use:   "text [--quick] [--out DIR]",
		Short: "Text experiment: a byte-level LM pretrained on the King James Bible, fine-tuned on Jane Austen",
		Long: `Text reproduces the paper's comparison on language modelling. A byte-level causal
transformer language model (pre-LayerNorm, learned positions) is pretrained on the King
James Bible (task A; cached by content, so reruns reuse it) and fine-tuned on Jane Austen's
six novels (task B) with every method — LoRA, PiSSA (top window), windows across the
spectrum, mid, MiLoRA (bottom window), OLoRA, DoRA, full fine-tuning and head-only (the
output layer alone). Both corpora are bytes, so the model keeps its one output layer and
forgetting is measured on the very network that was fine-tuned:

  b_bpc           Austen test bits per character after fine-tuning (lower is better)
  bpc_forgetting  rise of the KJV test bits per character (after − before)
  a_kl            mean KL(pretrained ‖ fine-tuned) per KJV test position, nats

The sweep runs through the experiment runner (crash-safe SQLite, rerunning resumes; see
'prism sweep --help'). Written to --out:

  results.db                   every run (prism results --db DIR/results.db)
  results.md                   settings, the table of runs, figures, generated samples
  figures/fig1.{png,svg,pdf}   Austen bpc and KJV forgetting against the window start
  figures/pareto.*             Austen bpc against forgetting, Pareto front (bottom left is best)
  figures/curves.*             training bpc, Austen and KJV test bpc along fine-tuning
  spec.yaml                    the spec that was run
  runs/ID/, analysis/          with --analysis: each run's weights, SVD, probes and logits,
                               and prism analyze's tables and figures over all runs

--quick: a 137k-parameter model (width 64, 2 blocks, context 64) pretrained one epoch on
24,000 windows of the KJV, fine-tuned 100 steps per method (about 4 minutes on 2 cores
from a cold cache). Without it: width 128, 4 blocks, context 128, two epochs on the whole
KJV, 250 steps per method (docs/text.md has the measured times). --spec runs your own
spec of kind finetune-text (e.g. more seeds or windows) through the same pipeline.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runReproduceText(ctx, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Quick, "quick", false, "the quick setting (minutes) instead of the full one")
	f.StringVar(&o.OutDir, "out", "", "directory for the database, figures and report (default results/text or results/text-quick)")
	f.StringVar(&o.SpecFile, "spec", "", "run this spec (kind finetune-text) instead of the built-in one")
	f.IntVar(&o.Workers, "workers", 0, "runs executed at once (default: the machine's cores / the cores one run uses)")
	f.StringVar(&o.CacheDir, "cache-dir", "", "cache of pretrained models and run checkpoints (default $PRISM_CACHE_DIR, else ~/.cache/prism)")
	f.BoolVar(&o.Analysis, "analysis", false, "also write each run's analysis directory (DIR/runs/ID) and analyse what fine-tuning changed in every layer (DIR/analysis, as prism analyze)")
	return cmd
}

// runReproduceText runs the text sweep and writes its report.
func runReproduceText(ctx context.Context, o reproduceTextOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	started := time.Now()
	var src []byte
	file := ""
	var err error
	switch {
	case o.SpecFile != "":
		if o.Quick {
			return errors.New("--quick chooses a built-in spec; it cannot be combined with --spec")
		}
		file = o.SpecFile
		if src, err = os.ReadFile(o.SpecFile); err != nil {
			return fmt.Errorf("--spec: %w", err)
		}
	default:
		name := finetunetext.FullSpecFile
		if o.Quick {
			name = finetunetext.QuickSpecFile
		}
		file = name + " (built in)"
		if src, err = finetunetext.SpecSource(name); err != nil {
			return err
		}
	}
	spec, err := experiment.ParseSpec(file, src)
	if err != nil {
		return err
	}
	if spec.Kind != finetunetext.Name {
		return fmt.Errorf("%s: kind %q; prism reproduce text runs specs of kind %q", file, spec.Kind, finetunetext.Name)
	}
	if o.OutDir != "" {
		spec.Output = o.OutDir
	}
	if spec.Output, err = filepath.Abs(spec.Output); err != nil {
		return err
	}
	ko := finetunetext.KindOptions{Train: train.Options{CacheDir: o.CacheDir}}
	if o.Analysis {
		ko.RunDirs = filepath.Join(spec.Output, "runs")
	}
	kind := finetunetext.KindWith(ko)
	runs, err := spec.Expand()
	if err != nil {
		return err
	}
	if err := spec.ValidateRuns(runs, kind); err != nil {
		return err
	}
	if err := ensureTextData(ctx, spec, o.Out); err != nil {
		return err
	}
	if err := os.MkdirAll(spec.Output, 0o755); err != nil {
		return err
	}
	if err := experiment.WriteFileAtomic(filepath.Join(spec.Output, "spec.yaml"), src); err != nil {
		return err
	}
	db := filepath.Join(spec.Output, "results.db")
	if err := store.CheckLocalFS(db); err != nil {
		return err
	}
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(o.Out, "text reproduction %s: %s; results in %s\n", spec.Name, experiment.Describe(runs), spec.Output)
	sum, err := runner.Sweep(ctx, st, spec, runs, kind, runner.Options{Workers: o.Workers, Out: o.Out, Live: o.Live})
	if err != nil {
		return err
	}
	for _, f := range sum.Failures {
		fmt.Fprintf(o.Out, "failed: %s %s: %s\n", experiment.ShortID(f.ID), f.Label, firstLineOf(f.Error))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rep, err := loadTextReport(ctx, st, spec, runs)
	if err != nil {
		return err
	}
	rep.command = "prism reproduce text"
	switch {
	case o.SpecFile != "":
		rep.command += " --spec " + o.SpecFile
	case o.Quick:
		rep.command += " --quick"
	}
	if o.OutDir != "" {
		rep.command += " --out " + o.OutDir
	}
	figs, ferr := rep.figures(filepath.Join(spec.Output, "figures"))
	report := filepath.Join(spec.Output, "results.md")
	if err := experiment.WriteFileAtomic(report, rep.markdown(figs, time.Since(started))); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "report %s\n", report)
	for _, f := range figs {
		fmt.Fprintf(o.Out, "figure %s.{png,svg,pdf}\n", filepath.Join(spec.Output, "figures", f.name))
	}
	if ferr != nil {
		return ferr
	}
	if o.Analysis {
		if err := analyzeTextRuns(ctx, rep, ko.RunDirs, filepath.Join(spec.Output, "analysis"), o.Out); err != nil {
			return err
		}
	}
	if n := len(runs) - len(rep.runs); n > 0 {
		return &sweepFailed{n: n, db: db}
	}
	return nil
}

// analyzeTextRuns runs prism analyze over the run directories of the
// report's runs (in its order) into out; runs finished earlier without
// --analysis have none and are named.
func analyzeTextRuns(ctx context.Context, rep *textReport, root, out string, log io.Writer) error {
	var dirs, missing []string
	for _, r := range rep.runs {
		dir, err := finetunetext.RunDir(root, r.Config)
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(dir, "run.json")); err != nil {
			missing = append(missing, runLabel(r.Config))
			continue
		}
		dirs = append(dirs, dir)
	}
	if len(missing) > 0 {
		fmt.Fprintf(log, "not analysed (finished earlier without --analysis): %s\n", strings.Join(missing, ", "))
	}
	if len(dirs) == 0 {
		return errors.New("--analysis: no run has an analysis directory (runs that finished before without --analysis have none; use a new --out)")
	}
	return runAnalyze(ctx, analyzeOptions{Runs: dirs, Out: out, Figures: true, Log: log})
}

// ensureTextData makes the spec's corpora present (verifying them, or
// fetching them from their Debian packages).
func ensureTextData(ctx context.Context, spec *experiment.Spec, out io.Writer) error {
	names := append([]string(nil), spec.Finetune.Tasks...)
	if spec.Pretrain != nil && spec.Pretrain.Task != "" {
		names = append([]string{spec.Pretrain.Task}, names...)
	} else {
		names = append([]string{train.DefaultTextTaskA}, names...)
	}
	cs, err := catalog.NewStore("")
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := catalog.Lookup(n); err != nil {
			continue // not a catalog dataset: the run kind opens it (and names the problem)
		}
		status, err := cs.Status(ctx, n)
		if err != nil {
			return err
		}
		if status.Present {
			continue
		}
		fmt.Fprintf(out, "fetching dataset %s (%s)\n", n, status.Entry.Source)
		if _, err := cs.Fetch(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// textReport is what the report and figures are drawn from: the done runs
// of the spec with their metrics, curves and samples.
type textReport struct {
	spec    *experiment.Spec
	runs    []plots.Run
	failed  []store.Row
	samples map[string]map[string]string // run ID → key (prompt, before, after) → text
	starts  map[string]float64           // run ID → window start of its first adapted layer (NaN: none)
	pretest float64                      // task A test bpc of the pretrained model
	presec  float64                      // its training time
	command string                       // the command that regenerates the report
}

func loadTextReport(ctx context.Context, st *store.Store, spec *experiment.Spec, runs []experiment.Run) (*textReport, error) {
	done, err := plots.FromStore(ctx, st, store.Filter{Spec: spec.Name})
	if err != nil {
		return nil, err
	}
	want := map[string]int{}
	for i, r := range runs {
		want[r.ID] = i
	}
	var kept []plots.Run
	for _, r := range done {
		if _, ok := want[r.ID]; ok {
			kept = append(kept, r)
		}
	}
	rows, err := st.Query(ctx, store.Filter{Spec: spec.Name, Statuses: []experiment.Status{experiment.StatusFailed}})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(kept))
	for i, r := range kept {
		ids[i] = r.ID
	}
	sums, err := st.Summaries(ctx, ids)
	if err != nil {
		return nil, err
	}
	rep := &textReport{spec: spec, failed: rows, samples: map[string]map[string]string{}, starts: map[string]float64{},
		pretest: math.NaN(), presec: math.NaN()}
	for _, r := range kept {
		rep.samples[r.ID] = map[string]string{}
		rep.starts[r.ID] = math.NaN()
		var layers []string
		byLayer := map[string]float64{}
		for _, s := range sums[r.ID] {
			switch {
			case s.Scope == finetunetext.SampleScope:
				rep.samples[r.ID][s.Key] = s.Text
			case s.Scope == "pretrain" && s.Key == "test_bpc":
				rep.pretest = s.Value
			case s.Scope == "pretrain" && s.Key == "seconds":
				rep.presec = math.Max(s.Value, nanToZero(rep.presec))
			case s.Key == "window_start":
				layers = append(layers, s.Scope)
				byLayer[s.Scope] = s.Value
			}
		}
		if len(layers) > 0 && r.Config.Window != nil {
			sort.Strings(layers)
			rep.starts[r.ID] = byLayer[layers[0]]
		}
	}
	// Windowed methods by window start, then the others in the spec's order.
	sort.SliceStable(kept, func(i, j int) bool {
		si, sj := rep.starts[kept[i].ID], rep.starts[kept[j].ID]
		wi, wj := !math.IsNaN(si), !math.IsNaN(sj)
		switch {
		case wi && wj && si != sj:
			return si < sj
		case wi != wj:
			return wi
		}
		return want[kept[i].ID] < want[kept[j].ID]
	})
	rep.runs = kept
	return rep, nil
}

func nanToZero(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

// textFigure is a figure the report links.
type textFigure struct{ name, caption string }

// figures draws fig1, pareto and curves into dir; a figure that cannot be
// drawn (e.g. no window runs for fig1) is skipped and its reason returned.
func (r *textReport) figures(dir string) ([]textFigure, error) {
	if len(r.runs) == 0 {
		return nil, errors.New("no run finished: no figures")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := plots.Options{AccMetric: experiment.MetricTaskBBPC, ForgetMetric: experiment.MetricBPCForgetting}
	end := 0.0
	for _, run := range r.runs {
		if run.Config.Method == experiment.MethodMiLoRA && !math.IsNaN(r.starts[run.ID]) {
			end = r.starts[run.ID]
		}
	}
	var out []textFigure
	var errs []error
	draw := func(name, caption string, fig func() (*figure.Figure, error)) {
		f, err := fig()
		if err == nil {
			err = f.Save(filepath.Join(dir, name))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("figure %s: %w", name, err))
			return
		}
		out = append(out, textFigure{name, caption})
	}
	draw("fig1", "(a) Austen test bits per character and (b) the rise of the KJV test bits per character against the window start s; PiSSA, mid and MiLoRA as points at their starts, the other methods as horizontal lines (lower is better in both panels).",
		func() (*figure.Figure, error) {
			return plots.Figure1(r.runs, plots.Fig1Options{Options: base, End: end})
		})
	draw("pareto", "Austen test bits per character against KJV forgetting for every configuration; the Pareto front (lower left is better) is ringed.",
		func() (*figure.Figure, error) { return plots.Pareto(r.runs, base) })
	draw("curves", "Along fine-tuning: (a) training bits per character, (b) Austen and (c) KJV test bits per character.",
		func() (*figure.Figure, error) {
			// Taller than the default: three panels whose axis labels are long.
			return plots.TrainingCurves(r.runs, []string{"train_bpc", experiment.MetricTaskBBPC, "a_bpc"}, nil,
				plots.Options{Size: figure.TwoColumn.WithHeight(3.4 * vg.Inch)})
		})
	return out, errors.Join(errs...)
}

// markdown is the report: settings, table, figures, samples.
func (r *textReport) markdown(figs []textFigure, took time.Duration) []byte {
	var b bytes.Buffer
	s := r.spec
	fmt.Fprintf(&b, "# Text reproduction: %s\n\n", s.Name)
	if s.Description != "" {
		fmt.Fprintf(&b, "%s.\n\n", strings.TrimSuffix(s.Description, "."))
	}
	taskA := train.DefaultTextTaskA
	if s.Pretrain != nil && s.Pretrain.Task != "" {
		taskA = s.Pretrain.Task
	}
	taskB := strings.Join(s.Finetune.Tasks, ", ")
	fmt.Fprintf(&b, "Task A (pretraining, forgetting measured on its test split): **%s**. Task B (fine-tuning): **%s**. ", taskA, taskB)
	fmt.Fprintf(&b, "Model `%s` %s. ", s.Model.Name, modelParamsText(s.Model.Params))
	if !math.IsNaN(r.pretest) {
		fmt.Fprintf(&b, "Pretrained model: %s test **%.4f** bits per character", taskA, r.pretest)
		if r.presec > 0 {
			fmt.Fprintf(&b, " (trained in %s)", fmtSeconds(r.presec))
		}
		b.WriteString(". ")
	}
	fmt.Fprintf(&b, "%d of %d runs done", len(r.runs), len(r.runs)+len(r.failed))
	if len(r.failed) > 0 {
		fmt.Fprintf(&b, ", %d failed", len(r.failed))
	}
	fmt.Fprintf(&b, "; this command took %s.\n\n", fmtSeconds(took.Seconds()))
	b.WriteString("Bits per character (bpc) are on held-out chapters, over non-overlapping windows of the model's context. " +
		"Lower is better for every column but the parameter count; forgetting = KJV bpc after − before.\n\n")

	b.WriteString("| method | window start s | trainable params | Austen bpc before → after | KJV bpc before → after | forgetting (bpc) | KL (nats) | train time |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, run := range r.runs {
		m := run.Metrics
		start := "—"
		if st := r.starts[run.ID]; !math.IsNaN(st) {
			start = fmt.Sprintf("%.0f", st)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.4f → **%.4f** | %.4f → %.4f | **%+.4f** | %.4f | %s |\n",
			r.label(run.Config), start, thousands(m[experiment.MetricTrainableParams]),
			m[experiment.MetricTaskBBPCBefore], m[experiment.MetricTaskBBPC],
			m[experiment.MetricTaskABPCBefore], m[experiment.MetricTaskABPCAfter], m[experiment.MetricBPCForgetting],
			m[experiment.MetricKL], fmtSeconds(m["train_s"]))
	}
	for _, f := range r.failed {
		fmt.Fprintf(&b, "| %s | failed: %s | | | | | | |\n", r.label(f.Config), strings.ReplaceAll(firstLineOf(f.Error), "|", `\|`))
	}
	if best, ok := r.best(); ok {
		fmt.Fprintf(&b, "\n%s\n", best)
	}
	if len(figs) > 0 {
		b.WriteString("\n## Figures\n\n")
		for _, f := range figs {
			fmt.Fprintf(&b, "![%s](figures/%s.png)\n\n%s (`figures/%s.{png,svg,pdf}`)\n\n", f.name, f.name, f.caption, f.name)
		}
	}
	if len(r.runs) > 0 {
		first := r.samples[r.runs[0].ID]
		b.WriteString("## Generated text\n\n")
		fmt.Fprintf(&b, "Each model continues the prompt %q (sampled byte by byte, the same seed for every model; the prompt is part of each text below).\n\n", first[finetunetext.SamplePrompt])
		fmt.Fprintf(&b, "**Before fine-tuning** (the model pretrained on %s):\n\n%s\n", taskA, codeBlock(first[finetunetext.SampleBefore]))
		fmt.Fprintf(&b, "**After fine-tuning on %s**:\n\n", taskB)
		for _, run := range r.runs {
			fmt.Fprintf(&b, "*%s* (Austen %.3f bpc, forgetting %+.3f):\n\n%s\n", r.label(run.Config),
				run.Metrics[experiment.MetricTaskBBPC], run.Metrics[experiment.MetricBPCForgetting], codeBlock(r.samples[run.ID][finetunetext.SampleAfter]))
		}
	}
	fmt.Fprintf(&b, "Regenerate (reusing finished runs): `%s`; query: `prism results --db results.db`.\n", r.command)
	return b.Bytes()
}

// best summarises the extremes: the best new-task bpc, the least forgetting,
// and the window sweep's forgetting at its ends and in the middle.
func (r *textReport) best() (string, bool) {
	if len(r.runs) == 0 {
		return "", false
	}
	bestB, leastF := r.runs[0], r.runs[0]
	for _, run := range r.runs {
		if run.Metrics[experiment.MetricTaskBBPC] < bestB.Metrics[experiment.MetricTaskBBPC] {
			bestB = run
		}
		if run.Metrics[experiment.MetricBPCForgetting] < leastF.Metrics[experiment.MetricBPCForgetting] {
			leastF = run
		}
	}
	line := fmt.Sprintf("Lowest Austen bpc: %s (%.4f). Least forgetting: %s (%+.4f bpc).",
		r.label(bestB.Config), bestB.Metrics[experiment.MetricTaskBBPC], r.label(leastF.Config), leastF.Metrics[experiment.MetricBPCForgetting])
	var parts []string
	for _, run := range r.runs {
		if st := r.starts[run.ID]; !math.IsNaN(st) {
			parts = append(parts, fmt.Sprintf("s=%.0f: %+.4f", st, run.Metrics[experiment.MetricBPCForgetting]))
		}
	}
	if len(parts) > 0 {
		line += " Forgetting along the spectrum (window start: bpc rise): " + strings.Join(parts, ", ") + "."
	}
	return line, true
}

// runLabel names a run in the report: its series and, for adapters, r and α.
func runLabel(c experiment.RunConfig) string {
	l := c.Series()
	if c.Window != nil && c.Window.Preset == "start" {
		l = fmt.Sprintf("window s=%d", c.Window.Start)
	}
	if c.Rank > 0 {
		l += fmt.Sprintf(" r=%d α=%g", c.Rank, c.Alpha)
	}
	return l
}

// label names a run, with its seed when the spec has several.
func (r *textReport) label(c experiment.RunConfig) string {
	if len(r.spec.Grid.Seeds) > 1 {
		return fmt.Sprintf("%s seed %d", runLabel(c), c.Seed)
	}
	return runLabel(c)
}

// codeBlock indents generated text as a markdown code block (train.Printable,
// no line ending in spaces).
func codeBlock(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(train.Printable(text), "\n"), "\n") {
		b.WriteString(strings.TrimRight("    "+line, " \t") + "\n")
	}
	return b.String()
}

// modelParamsText writes a model's hyper-parameters as "(k v, …)", sorted by key.
func modelParamsText(p map[string]any) string {
	if len(p) == 0 {
		return "(defaults)"
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %v", k, p[k])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
