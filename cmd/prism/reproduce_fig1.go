package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/finetune"
	"github.com/prism-lora/prism/core/experiment/plots"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/figure"
	"github.com/prism-lora/prism/experiments"
	"github.com/prism-lora/prism/internal/atomicfile"
)

func init() { addReproduceCommand(newReproduceFig1Cmd) }

// reproduceOptions are the inputs shared by the `prism reproduce` experiments.
type reproduceOptions struct {
	Quick   bool   // the quick setting (experiments/NAME-quick.yaml)
	Tiny    bool   // hidden: a seconds-long setting for tests
	Out     string // output directory ("" = the spec's output)
	DB      string // results database ("" = OUT/results.db)
	Seeds   int    // seeds per configuration (0 = the spec's)
	Workers int    // runs at once (0 = sized to the machine)
	Stdout  io.Writer
}

func addReproduceFlags(cmd *cobra.Command, o *reproduceOptions, name string) {
	f := cmd.Flags()
	f.BoolVar(&o.Quick, "quick", false, "the quick setting (experiments/"+name+"-quick.yaml): subsets of the data, one epoch")
	f.StringVar(&o.Out, "out", "", "output directory for results.db, results.md and figures/ (default results/"+name+" or results/"+name+"-quick)")
	f.StringVar(&o.DB, "db", "", "results database (default OUT/results.db); runs already stored there by another reproduction with the same configuration are reused")
	f.IntVar(&o.Seeds, "seeds", 0, "seeds per configuration, 0 … N−1 (default: the spec's)")
	f.IntVar(&o.Workers, "workers", 0, "runs executed at once (default: the machine's cores / cores per run, i.e. 1)")
	f.BoolVar(&o.Tiny, "tiny", false, "a seconds-long setting for tests (tiny subsets and model)")
	f.MarkHidden("tiny")
}

// reproduction is what one `prism reproduce` experiment does around the
// shared sweep: its spec files, its tiny setting, its figures and its report.
type reproduction struct {
	name      string // also names its specs: experiments/NAME.yaml and NAME-quick.yaml
	tiny      func(*experiment.Spec)
	figures   func(r *reproduced) error
	report    func(r *reproduced) string
	dimension string // what the table's rows are, for the summary line
}

// reproduced is a finished sweep and what it produced.
type reproduced struct {
	opts    reproduceOptions
	spec    *experiment.Spec
	runs    []experiment.Run
	done    []plots.Run
	failed  []store.Row
	rows    map[string]store.Row // by ID
	sums    map[string][]experiment.Summary
	summary runner.Summary
	out     string
	figDir  string
	figures []string // base names written (NAME.png, .svg, .pdf)
	elapsed time.Duration
	db      string
}

// runReproduction loads the spec, runs (or resumes) its sweep into
// OUT/results.db, and writes the figures and OUT/results.md.
func runReproduction(ctx context.Context, o reproduceOptions, r reproduction) (*reproduced, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Seeds < 0 || o.Workers < 0 {
		return nil, fmt.Errorf("--seeds and --workers must be ≥ 0")
	}
	began := time.Now()
	file := r.specFile(o.Quick)
	spec, err := reproductionSpec(file, o, r)
	if err != nil {
		return nil, err
	}
	kind, err := experiment.Kinds.Lookup(spec.Kind)
	if err != nil {
		return nil, err
	}
	runs, err := spec.Expand()
	if err != nil {
		return nil, err
	}
	if err := spec.ValidateRuns(runs, kind); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spec.Output, 0o755); err != nil {
		return nil, err
	}
	db := o.DB
	if db == "" {
		db = filepath.Join(spec.Output, "results.db")
	}
	if err := store.CheckLocalFS(db); err != nil {
		return nil, err
	}
	st, err := store.Open(db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	fmt.Fprintf(o.Stdout, "prism reproduce %s: spec %s (%s), %s; results in %s\n", r.name, spec.Name, file, experiment.Describe(runs), spec.Output)
	sum, err := runner.Sweep(ctx, st, spec, runs, kind, runner.Options{Workers: o.Workers, Out: o.Stdout})
	if err != nil {
		return nil, err
	}
	res := &reproduced{opts: o, spec: spec, runs: runs, summary: sum, out: spec.Output,
		figDir: filepath.Join(spec.Output, "figures"), rows: map[string]store.Row{}}
	if err := res.load(ctx, st); err != nil {
		return nil, err
	}
	if len(res.done) == 0 {
		return res, fmt.Errorf("no run finished; see prism results --db %s --status failed", db)
	}
	if err := os.MkdirAll(res.figDir, 0o755); err != nil {
		return nil, err
	}
	if err := r.figures(res); err != nil {
		return nil, err
	}
	res.elapsed = time.Since(began)
	report := r.report(res)
	if err := atomicfile.Write(filepath.Join(spec.Output, "results.md"), []byte(report)); err != nil {
		return nil, err
	}
	res.db = db
	fmt.Fprintf(o.Stdout, "\n%s\n", report)
	fmt.Fprintf(o.Stdout, "wrote %s, %s and %s/{%s}.{png,svg,pdf} in %s\n", filepath.Join(spec.Output, "results.md"), db, res.figDir,
		strings.Join(res.figures, ","), roundDuration(res.elapsed))
	if n := len(res.failed); n > 0 {
		return res, &sweepFailed{n: n, db: db}
	}
	return res, nil
}

// reproductionSpec reads an embedded spec and applies the command's
// overrides (output, seeds, tiny); the stored spec text records them.
func reproductionSpec(file string, o reproduceOptions, r reproduction) (*experiment.Spec, error) {
	data, err := experiments.Spec(file)
	if err != nil {
		return nil, err
	}
	spec, err := experiment.ParseSpec(filepath.Join("experiments", file), data)
	if err != nil {
		return nil, err
	}
	var notes []string
	if o.Tiny {
		r.tiny(spec)
		notes = append(notes, "tiny test setting")
	}
	if o.Seeds > 0 {
		spec.Grid.Seeds = nil
		for s := range o.Seeds {
			spec.Grid.Seeds = append(spec.Grid.Seeds, uint64(s))
		}
		for m, ov := range spec.Grid.Overrides {
			ov.Seeds = nil
			spec.Grid.Overrides[m] = ov
		}
		notes = append(notes, fmt.Sprintf("seeds %v", spec.Grid.Seeds))
	}
	if o.Out != "" {
		spec.Output = o.Out
		notes = append(notes, "output "+o.Out)
	}
	if spec.Output, err = filepath.Abs(spec.Output); err != nil {
		return nil, err
	}
	if len(notes) > 0 {
		spec.Source = append(append([]byte(nil), data...), []byte("\n# prism reproduce "+r.name+" overrides: "+strings.Join(notes, "; ")+"\n")...)
	}
	return spec, nil
}

// load reads the runs of this expansion back from the store.
func (r *reproduced) load(ctx context.Context, st *store.Store) error {
	want := map[string]bool{}
	for _, run := range r.runs {
		want[run.ID] = true
	}
	rows, err := st.Query(ctx, store.Filter{Spec: r.spec.Name})
	if err != nil {
		return err
	}
	var ids []string
	for _, row := range rows {
		if !want[row.ID] {
			continue
		}
		r.rows[row.ID] = row
		switch row.Status {
		case experiment.StatusDone:
			ids = append(ids, row.ID)
		case experiment.StatusFailed:
			r.failed = append(r.failed, row)
		}
	}
	curves, err := st.Curves(ctx, ids)
	if err != nil {
		return err
	}
	if r.sums, err = st.Summaries(ctx, ids); err != nil {
		return err
	}
	for _, id := range ids {
		row := r.rows[id]
		r.done = append(r.done, plots.Run{ID: id, Config: row.Config, Metrics: row.Metrics, Curves: curves[id]})
	}
	return nil
}

// save writes a figure as figDir/name.{svg,pdf,png}.
func (r *reproduced) save(name string, fig *figure.Figure, err error) error {
	if err != nil {
		return fmt.Errorf("figure %s: %w", name, err)
	}
	if err := fig.Save(filepath.Join(r.figDir, name)); err != nil {
		return fmt.Errorf("figure %s: %w", name, err)
	}
	r.figures = append(r.figures, name)
	return nil
}

// stat is a mean ± sample standard deviation over seeds.
type stat struct {
	mean, std float64
	n         int
}

func newStat(vs []float64) stat {
	var s stat
	var sum float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			sum += v
			s.n++
		}
	}
	if s.n == 0 {
		return stat{math.NaN(), math.NaN(), 0}
	}
	s.mean = sum / float64(s.n)
	if s.n < 2 {
		s.std = math.NaN()
		return s
	}
	var ss float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			ss += (v - s.mean) * (v - s.mean)
		}
	}
	s.std = math.Sqrt(ss / float64(s.n-1))
	return s
}

// format writes "m ± s" with the given decimals ("m" for one seed).
func (s stat) format(decimals int) string {
	if s.n == 0 {
		return "—"
	}
	if math.IsNaN(s.std) {
		return fmt.Sprintf("%.*f", decimals, s.mean)
	}
	return fmt.Sprintf("%.*f ± %.*f", decimals, s.mean, decimals, s.std)
}

// group is the done runs of one configuration (all seeds).
type group struct {
	key    string
	config experiment.RunConfig
	runs   []plots.Run
	failed int
}

func (g *group) metric(name string) stat {
	vs := make([]float64, 0, len(g.runs))
	for _, r := range g.runs {
		v, ok := r.Metrics[name]
		if !ok {
			v = math.NaN()
		}
		vs = append(vs, v)
	}
	return newStat(vs)
}

// groups collects runs by key (done and failed), in the order of the
// expansion.
func (r *reproduced) groups(key func(experiment.RunConfig) string) []*group {
	byKey := map[string]*group{}
	var out []*group
	get := func(c experiment.RunConfig) *group {
		k := key(c)
		g, ok := byKey[k]
		if !ok {
			g = &group{key: k, config: c}
			byKey[k] = g
			out = append(out, g)
		}
		return g
	}
	done := map[string]plots.Run{}
	for _, d := range r.done {
		done[d.ID] = d
	}
	for _, run := range r.runs {
		g := get(run.Config)
		if d, ok := done[run.ID]; ok {
			g.runs = append(g.runs, d)
		} else if row, ok := r.rows[run.ID]; ok && row.Status == experiment.StatusFailed {
			g.failed++
		}
	}
	return out
}

// windowFraction is where a run's window starts, as a fraction of the
// spectrum (pissa 0, milora 1; NaN without a window).
func windowFraction(c experiment.RunConfig) float64 {
	if c.Window == nil {
		return math.NaN()
	}
	switch c.Window.Preset {
	case "pissa":
		return 0
	case "milora":
		return 1
	case "mid":
		return 0.5
	case "fraction":
		return c.Window.Fraction
	}
	return math.NaN()
}

// seriesLabel names a configuration in tables: "PiSSA", "window f=0.4", "LoRA", ….
func seriesLabel(c experiment.RunConfig) string {
	if c.Method == experiment.MethodWindow && c.Window != nil {
		return "window " + c.Window.String()
	}
	if d, ok := plots.MethodDisplay[c.Method]; ok {
		return d
	}
	return c.Method
}

// orderByWindow sorts groups: windowed configurations by start (PiSSA first,
// MiLoRA last), then the others in their spec order.
func orderByWindow(gs []*group) {
	sort.SliceStable(gs, func(i, j int) bool {
		fi, fj := windowFraction(gs[i].config), windowFraction(gs[j].config)
		switch {
		case !math.IsNaN(fi) && !math.IsNaN(fj):
			return fi < fj
		case !math.IsNaN(fi):
			return true
		}
		return false
	})
}

// settingsText describes the spec's task pair and training in words.
func settingsText(spec *experiment.Spec) string {
	var b strings.Builder
	p := spec.Pretrain
	subset := func(params map[string]any, key string) string {
		if v, ok := params[key]; ok {
			return fmt.Sprintf("first %v", v)
		}
		return "all"
	}
	fmt.Fprintf(&b, "Model: %s (%s). Task A: %s, pretrained %d epochs at lr %g, batch %d, seed %d (train: %s, test: %s images). ",
		spec.Model.Name, modelText(spec.Model.Params), p.Task, p.Epochs, p.LearningRate, p.BatchSize, p.Seed,
		subset(p.Params, "train_subset"), subset(p.Params, "test_subset"))
	g := spec.Grid
	fmt.Fprintf(&b, "Task B: %s with a new head, batch %d (train: %s, test: %s images; task-A forgetting on %s test images with task A's own head). ",
		strings.Join(spec.Finetune.Tasks, ", "), spec.Finetune.BatchSize, subset(spec.Finetune.Params, "train_subset"),
		subset(spec.Finetune.Params, "test_subset"), subset(spec.Finetune.Params, "old_test_subset"))
	fmt.Fprintf(&b, "Adapters on every backbone linear layer (patch embedding, qkv, attention output, MLP), rank %v, α %v (scale α/r); AdamW, cosine schedule with 5%% warmup, gradient clipping at 1; epochs %v, learning rates %v, seeds %v.",
		g.Ranks, g.Alphas, g.Epochs, g.LearningRates, g.Seeds)
	return b.String()
}

func modelText(params map[string]any) string {
	if len(params) == 0 {
		return "patch 7, width 64, depth 4, heads 4, MLP 128"
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %v", k, params[k])
	}
	return strings.Join(parts, ", ")
}

// failedText lists failed runs with their reasons.
func failedText(r *reproduced) string {
	if len(r.failed) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d run(s) failed (they run again on the next invocation):\n\n", len(r.failed))
	for _, f := range r.failed {
		fmt.Fprintf(&b, "- `%s` %s: %s\n", experiment.ShortID(f.ID), f.Config.Label(), firstLineOf(f.Error))
	}
	return b.String()
}

// specFile is the shipped spec of the reproduction: NAME.yaml, or
// NAME-quick.yaml for the quick setting.
func (r reproduction) specFile(quick bool) string {
	if quick {
		return r.name + "-quick.yaml"
	}
	return r.name + ".yaml"
}

// reproductionHelp is the text of a reproduction's sub-command.
type reproductionHelp struct{ use, short, long, example string }

// newReproductionCmd is the cobra command of a reproduction: its flags
// (addReproduceFlags), interrupted by SIGINT/SIGTERM through ctx.
func newReproductionCmd(r reproduction, h reproductionHelp) *cobra.Command {
	var o reproduceOptions
	cmd := &cobra.Command{
		Use:     h.use,
		Short:   h.short,
		Long:    h.long,
		Example: h.example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdout = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err := runReproduction(ctx, o, r)
			return err
		},
	}
	addReproduceFlags(cmd, &o, r.name)
	return cmd
}

// ---- fig1 ----

func newReproduceFig1Cmd() *cobra.Command {
	return newReproductionCmd(fig1Reproduction, reproductionHelp{
		use:   "fig1 [--quick] [--out DIR] [--seeds N] [--workers N]",
		short: "The Figure-1 analogue: learning vs forgetting across the window start (ViT, MNIST → Fashion-MNIST)",
		long: `Pretrains the small ViT on MNIST (task A; cached by content, so it is trained once),
then fine-tunes it on Fashion-MNIST (task B) with a new head and rank-8 adapters whose
window of singular components starts across the whole spectrum — PiSSA (s = 0), windows at
fractions f of the spectrum (s = round(f·(k−r))), MiLoRA (s = k−r) — and with LoRA, OLoRA,
DoRA, full fine-tuning and head-only training, over several seeds. Task-A forgetting is
measured with task A's own, untouched head.

Writes into --out:
  results.db                  every run (SQLite; 'prism results --db …' lists and exports them)
  results.md                  the table (mean ± std over seeds) and the figures
  figures/fig1.{png,svg,pdf}  (a) task-B accuracy and (b) task-A forgetting vs window start,
                              PiSSA and MiLoRA at the ends, LoRA and full FT as reference lines
  figures/pareto.*            accuracy vs forgetting of every configuration, Pareto front
  figures/curves.*            training loss and accuracy within training
  figures/analysis.*          weight change in the pretrained singular basis vs window start:
                              diagonal vs off-diagonal part, share inside the window

Running it again resumes: finished runs are skipped, interrupted ones run again.
The specs are experiments/fig1.yaml and experiments/fig1-quick.yaml ('prism sweep' runs
them too). --quick took 3 minutes on 2 cores, the full setting 48 minutes from a cold
cache (docs/reproduce.md has the measured times and results).`,
		example: `  prism reproduce fig1 --quick --out results/fig1-quick
  prism reproduce fig1                       # full setting, resumable
  prism results --db results/fig1/results.db --sort forgetting`,
	})
}

// fig1Reproduction is `prism reproduce fig1`.
var fig1Reproduction = reproduction{
	name:    "fig1",
	tiny:    tinySpec,
	figures: fig1Figures,
	report:  fig1Report,
}

// tinySpec shrinks a reproduction spec to seconds: a small ViT, tiny
// subsets, one epoch, windows at 0.5 only, two seeds.
func tinySpec(s *experiment.Spec) {
	s.Name += "-tiny"
	s.Output += "-tiny"
	s.Model.Params = map[string]any{"width": 16, "depth": 1, "heads": 2, "mlp": 32}
	s.Pretrain.Epochs, s.Pretrain.BatchSize, s.Pretrain.LearningRate = 2, 64, 4e-3
	s.Pretrain.Params = map[string]any{"train_subset": 1024, "test_subset": 256}
	s.Finetune.BatchSize = 64
	s.Finetune.Params = map[string]any{"train_subset": 512, "test_subset": 256, "old_test_subset": 256, "trace": 4, "analysis": true}
	s.Grid.WindowFractions = []float64{0.5}
	s.Grid.Epochs = []int{1}
	s.Grid.Seeds = []uint64{0, 1}
	if len(s.Grid.LearningRates) > 2 {
		s.Grid.LearningRates = []float64{3e-3, 3e-2}
	}
}

// fig1Methods are the methods the Figure-1 panels show: the windows, PiSSA
// and MiLoRA at the ends, LoRA and full fine-tuning as reference lines (the
// others are in the table and the Pareto figure).
var fig1Methods = []string{experiment.MethodWindow, experiment.MethodPiSSA, experiment.MethodMiLoRA, experiment.MethodLoRA, experiment.MethodFull}

func fig1Figures(r *reproduced) error {
	var shown []plots.Run
	for _, run := range r.done {
		if slices.Contains(fig1Methods, run.Config.Method) {
			shown = append(shown, run)
		}
	}
	fig, err := plots.Figure1(shown, plots.Fig1Options{})
	if err := r.save("fig1", fig, err); err != nil {
		return err
	}
	fig, err = plots.Pareto(r.done, plots.Options{})
	if err := r.save("pareto", fig, err); err != nil {
		return err
	}
	fig, err = plots.TrainingCurves(r.done, []string{"step_loss", "step_acc"}, curveSeries(r.done), plots.Options{})
	if err := r.save("curves", fig, err); err != nil {
		return err
	}
	if fig, ok, err := analysisFigure(r); ok || err != nil {
		return r.save("analysis", fig, err)
	}
	return nil
}

// modelSummary is a run's model-wide analysis value (NaN when absent).
func (r *reproduced) modelSummary(id, key string) float64 {
	for _, s := range r.sums[id] {
		if s.Scope == finetune.ModelScope && s.Key == key {
			return s.Value
		}
	}
	return math.NaN()
}

// analysisFigure draws, from the runs' analysis summaries, how the weights
// changed in the pretrained singular basis against the window start (PiSSA,
// the windows, MiLoRA): (a) the diagonal (strength of existing components)
// and off-diagonal (mixing) parts of ΔM, summed over layers; (b) the share of
// ‖ΔM‖² inside the window's block and the spectral energy the window starts
// from. ok is false when the runs have no summaries (analysis off).
func analysisFigure(r *reproduced) (*figure.Figure, bool, error) {
	byF := map[float64]map[string][]float64{}
	var fs []float64
	for _, run := range r.done {
		f := windowFraction(run.Config)
		if math.IsNaN(f) || run.Config.Method == experiment.MethodMid {
			continue
		}
		if _, ok := byF[f]; !ok {
			byF[f] = map[string][]float64{}
			fs = append(fs, f)
		}
		for _, k := range []string{"diag_norm", "off_norm", "window_share", "window_energy"} {
			if v := r.modelSummary(run.ID, k); !math.IsNaN(v) {
				byF[f][k] = append(byF[f][k], v)
			}
		}
	}
	sort.Float64s(fs)
	series := func(key string) (xs, mean, std []float64) {
		for _, f := range fs {
			if st := newStat(byF[f][key]); st.n > 0 {
				xs, mean, std = append(xs, f), append(mean, st.mean), append(std, st.std)
			}
		}
		return
	}
	if xs, _, _ := series("off_norm"); len(xs) < 2 {
		return nil, false, nil
	}
	const xlabel = "window start (fraction of the spectrum; PiSSA 0, MiLoRA 1)"
	a := figure.NewPanel("(a) ΔM = Uᵀ(W₁ − W₀)V in the pretrained singular basis", xlabel, "Frobenius norm, all layers")
	b := figure.NewPanel("(b) where the change lands", xlabel, "fraction")
	for i, c := range []struct {
		p     *figure.Panel
		key   string
		label string
	}{
		{a, "diag_norm", "diagonal of ΔM (strength of existing components)"},
		{a, "off_norm", "off-diagonal of ΔM (mixing of components)"},
		{b, "window_share", "share of the ΔM energy in the window's block"},
		{b, "window_energy", "spectral energy in the window (Σ σᵢ² / Σ σ²)"},
	} {
		xs, mean, std := series(c.key)
		if err := c.p.MeanStd(i, c.label, xs, mean, std); err != nil {
			return nil, true, err
		}
	}
	return &figure.Figure{Panels: [][]*figure.Panel{{a, b}}, Size: figure.TwoColumn, Legend: figure.LegendBelow}, true, nil
}

// curveSeries picks the series for the training-curve figure: PiSSA, the
// middle window, MiLoRA, LoRA and full fine-tuning (those present).
func curveSeries(runs []plots.Run) []string {
	set := map[string]bool{}
	var fractions []float64
	for _, r := range runs {
		set[r.Config.Series()] = true
		if r.Config.Method == experiment.MethodWindow && r.Config.Window != nil && r.Config.Window.Preset == "fraction" {
			if !slices.Contains(fractions, r.Config.Window.Fraction) {
				fractions = append(fractions, r.Config.Window.Fraction)
			}
		}
	}
	var out []string
	if set["pissa"] {
		out = append(out, "pissa")
	}
	if len(fractions) > 0 {
		sort.Float64s(fractions)
		mid := fractions[0]
		for _, f := range fractions {
			if math.Abs(f-0.5) < math.Abs(mid-0.5) {
				mid = f
			}
		}
		out = append(out, "window "+(&experiment.Window{Preset: "fraction", Fraction: mid}).String())
	}
	for _, s := range []string{"milora", "lora", "full"} {
		if set[s] {
			out = append(out, s)
		}
	}
	return out
}

func fig1Report(r *reproduced) string {
	var b strings.Builder
	mode := "full setting"
	switch {
	case r.opts.Tiny:
		mode = "tiny test setting"
	case r.opts.Quick:
		mode = "quick setting"
	}
	fmt.Fprintf(&b, "# Figure-1 analogue: learning vs forgetting across the window start (%s)\n\n", mode)
	fmt.Fprintf(&b, "`prism reproduce fig1%s` — spec `%s`, %s, %s on %s.\n\n", flagsText(r.opts), r.spec.Name,
		experiment.Describe(r.runs), roundDuration(r.elapsed), time.Now().UTC().Format("2006-01-02"))
	b.WriteString(settingsText(r.spec) + "\n\n")
	b.WriteString("Mean ± standard deviation over seeds. Window start: fraction f of the spectrum, s = round(f·(k−r)) " +
		"(for the 64-wide layers k = 64, r = 8: s = round(56·f); PiSSA f = 0, MiLoRA f = 1). " +
		"Forgetting = task-A accuracy before − after fine-tuning, in points; KL = mean KL(pretrained ‖ fine-tuned) on task-A test images.\n\n")
	b.WriteString("| method | window start f | s (k = 64) | task-B accuracy (%) | task-A accuracy after (%) | forgetting (points) | KL (nats) | trainable params | seeds |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	gs := r.groups(func(c experiment.RunConfig) string { return c.Series() })
	orderByWindow(gs)
	for _, g := range gs {
		f := windowFraction(g.config)
		fs, ss := "—", "—"
		if !math.IsNaN(f) {
			fs, ss = fmt.Sprintf("%.2g", f), fmt.Sprint(int(math.Round(56*f)))
		}
		seeds := fmt.Sprint(len(g.runs))
		if g.failed > 0 {
			seeds += fmt.Sprintf(" (+%d failed)", g.failed)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", seriesLabel(g.config), fs, ss,
			g.metric(experiment.MetricTaskBAcc).format(2), g.metric(experiment.MetricTaskAAccAfter).format(2),
			g.metric(experiment.MetricForgetting).format(2), g.metric(experiment.MetricKL).format(3),
			paramsText(g.metric(experiment.MetricTrainableParams)), seeds)
	}
	if before := newStat(metricValues(r.done, experiment.MetricTaskAAccBefore)); before.n > 0 {
		fmt.Fprintf(&b, "\nTask-A accuracy of the pretrained model (before fine-tuning): %.2f%%.\n", before.mean)
	}
	b.WriteString(fig1Findings(gs))
	b.WriteString(failedText(r))
	b.WriteString("\n## Figures\n\n")
	captions := map[string]string{
		"fig1":   "(a) task-B accuracy and (b) task-A forgetting against the window start (mean ± std over seeds); PiSSA and MiLoRA at the ends, LoRA and full fine-tuning as horizontal lines with ± std bands",
		"pareto": "task-B accuracy against task-A forgetting for every configuration (mean over seeds); the Pareto front (more accuracy, less forgetting) is the staircase",
		"curves": "training loss and accuracy within training (means over the steps between points), mean ± std over seeds",
		"analysis": "how the weights changed, in the pretrained singular basis (DESIGN.md §2), against the window start: " +
			"(a) diagonal (strength of the existing components) and off-diagonal (mixing) parts of ΔM, summed over layers; " +
			"(b) the share of the change inside the window's block and the spectral energy the window starts from (mean ± std over seeds)",
	}
	for _, f := range r.figures {
		fmt.Fprintf(&b, "![%s](figures/%s.png)\n\n*%s.* (`figures/%s.svg`, `.pdf`)\n\n", captions[f], f, captions[f], f)
	}
	return b.String()
}

// clearlyBelow reports whether a's mean lies below b's by more than twice
// the standard error of the difference, sqrt(sa²/na + sb²/nb) — about a 95%
// interval; false when either has fewer than two seeds.
func clearlyBelow(a, b stat) bool {
	if a.n < 2 || b.n < 2 || math.IsNaN(a.std) || math.IsNaN(b.std) {
		return false
	}
	se := math.Sqrt(a.std*a.std/float64(a.n) + b.std*b.std/float64(b.n))
	return b.mean-a.mean > 2*se
}

// pearson is the correlation of x and y.
func pearson(x, y []float64) float64 {
	mx, my := newStat(x).mean, newStat(y).mean
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

// fig1Findings states what the table shows about the window start: the
// forgetting and accuracy along the spectrum, whether forgetting is lowest
// inside it (beyond the seed-to-seed noise), and which configurations are on
// the Pareto front.
func fig1Findings(gs []*group) string {
	type point struct {
		label       string
		f           float64
		acc, forget stat
	}
	var win, all []point
	for _, g := range gs {
		p := point{seriesLabel(g.config), windowFraction(g.config), g.metric(experiment.MetricTaskBAcc), g.metric(experiment.MetricForgetting)}
		if p.acc.n == 0 {
			continue
		}
		all = append(all, p)
		if !math.IsNaN(p.f) {
			win = append(win, p)
		}
	}
	if len(win) < 3 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n**What the table shows** (computed from the numbers above; mean ± one standard deviation over seeds; " +
		"a difference counts as clear when it exceeds twice its standard error):\n\n")
	along := func(get func(point) stat, unit string) string {
		parts := make([]string, len(win))
		for i, p := range win {
			parts[i] = fmt.Sprintf("%s %s", p.label, get(p).format(1))
		}
		return strings.Join(parts, " → ") + unit
	}
	var fs, fg, ac []float64
	for _, p := range win {
		fs, fg, ac = append(fs, p.f), append(fg, p.forget.mean), append(ac, p.acc.mean)
	}
	fmt.Fprintf(&b, "- Forgetting from the top to the bottom of the spectrum: %s (correlation with the window start r = %.2f).\n",
		along(func(p point) stat { return p.forget }, " points"), pearson(fs, fg))
	lo, hi := win[0], win[len(win)-1]
	inner := win[1 : len(win)-1]
	best := inner[0]
	for _, p := range inner {
		if p.forget.mean < best.forget.mean {
			best = p
		}
	}
	endBest := lo
	if hi.forget.mean < lo.forget.mean {
		endBest = hi
	}
	switch {
	case clearlyBelow(best.forget, lo.forget) && clearlyBelow(best.forget, hi.forget):
		fmt.Fprintf(&b, "- Forgetting is U-shaped in the window start: %s forgets clearly less (%s points) than both ends (%s %s, %s %s).\n",
			best.label, best.forget.format(2), lo.label, lo.forget.format(2), hi.label, hi.forget.format(2))
	case best.forget.mean < endBest.forget.mean:
		fmt.Fprintf(&b, "- No clear U shape: the least forgetting inside the spectrum (%s, %s points) is within the noise of %s (%s).\n",
			best.label, best.forget.format(2), endBest.label, endBest.forget.format(2))
	default:
		fmt.Fprintf(&b, "- Not U-shaped: no window inside the spectrum forgets less than %s (%s points; best inside: %s, %s).\n",
			endBest.label, endBest.forget.format(2), best.label, best.forget.format(2))
	}
	switch {
	case clearlyBelow(hi.forget, lo.forget):
		fmt.Fprintf(&b, "- %s (the top of the spectrum) forgets clearly more than %s (the bottom): %.1f points more.\n", lo.label, hi.label, lo.forget.mean-hi.forget.mean)
	case clearlyBelow(lo.forget, hi.forget):
		fmt.Fprintf(&b, "- %s (the bottom of the spectrum) forgets clearly more than %s (the top): %.1f points more.\n", hi.label, lo.label, hi.forget.mean-lo.forget.mean)
	}
	fmt.Fprintf(&b, "- Task-B accuracy from the top to the bottom of the spectrum: %s (r = %.2f).\n",
		along(func(p point) stat { return p.acc }, "%"), pearson(fs, ac))
	var front []string
	for _, p := range all {
		dominated := false
		for _, q := range all {
			if q.label != p.label && q.acc.mean >= p.acc.mean && q.forget.mean <= p.forget.mean &&
				(q.acc.mean > p.acc.mean || q.forget.mean < p.forget.mean) {
				dominated = true
				break
			}
		}
		if !dominated {
			front = append(front, p.label)
		}
	}
	fmt.Fprintf(&b, "- Pareto front (no other configuration has both higher mean accuracy and lower mean forgetting): %s.\n",
		strings.Join(front, ", "))
	return b.String()
}

func metricValues(runs []plots.Run, name string) []float64 {
	var out []float64
	for _, r := range runs {
		if v, ok := r.Metrics[name]; ok {
			out = append(out, v)
		}
	}
	return out
}

// paramsText writes a parameter count with thousands separators.
func paramsText(s stat) string {
	if s.n == 0 {
		return "—"
	}
	n := int(math.Round(s.mean))
	str := fmt.Sprint(n)
	var out []string
	for len(str) > 3 {
		out = append([]string{str[len(str)-3:]}, out...)
		str = str[:len(str)-3]
	}
	return strings.Join(append([]string{str}, out...), ",")
}

// flagsText is the command line's flags, for the report.
func flagsText(o reproduceOptions) string {
	var parts []string
	if o.Quick {
		parts = append(parts, "--quick")
	}
	if o.Tiny {
		parts = append(parts, "--tiny")
	}
	if o.Seeds > 0 {
		parts = append(parts, fmt.Sprintf("--seeds %d", o.Seeds))
	}
	if o.Out != "" {
		parts = append(parts, "--out "+o.Out)
	}
	if o.DB != "" {
		parts = append(parts, "--db "+o.DB)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}
