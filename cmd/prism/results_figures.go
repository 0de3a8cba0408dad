package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/plots"
	"github.com/prism-lora/prism/core/figure"
)

func init() { resultsSubcommands = append(resultsSubcommands, newResultsFiguresCmd) }

// resultsFiguresOptions are the inputs of `prism results figures`.
type resultsFiguresOptions struct {
	resultsFilter
	OutDir        string   // where the figures go
	Figures       []string // fig1, pareto, lr, curves (empty: every one that applies)
	End           float64  // fig1: MiLoRA's window start k−r (0: the largest start)
	Series        []string // lr, curves: only these series
	Curves        []string // curves: curve names (empty: all, up to 3)
	IncludeFailed bool     // lr: count failed runs as FailedAcc
	FailedAcc     float64
	Out           io.Writer
}

var allFigures = []string{"fig1", "pareto", "lr", "curves"}

func newResultsFiguresCmd() *cobra.Command {
	var o resultsFiguresOptions
	cmd := &cobra.Command{
		Use:   "figures --out DIR",
		Short: "Draw the paper figures from stored runs (SVG, PDF and PNG)",
		Long: `Figures draws, from the done runs matching the filters:
  fig1    two panels against the window start: new-task accuracy and old-task
          forgetting, mean ± std over seeds; PiSSA, MiLoRA and mid as points at
          their starts; LoRA, full fine-tuning and other methods without a
          window as horizontal reference lines
  pareto  accuracy against forgetting for every configuration, Pareto front
          highlighted
  lr      accuracy and forgetting against the learning rate, one curve per
          method and window
  curves  training curves (value against epoch) per method and window
Each is written as DIR/NAME.svg, .pdf and .png. fig1, lr and curves need the
runs of a method to share one setting of the other hyperparameters: filter
with --where (e.g. --where lr=0.001 for fig1). Without --figure, every figure
that applies is drawn and the others are skipped with a note.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			return runResultsFigures(cmd.Context(), o)
		},
	}
	addFilterFlags(cmd, &o.resultsFilter)
	f := cmd.Flags()
	f.StringVar(&o.OutDir, "out", "", "directory for the figures (required)")
	f.StringSliceVar(&o.Figures, "figure", nil, "figures to draw: "+strings.Join(allFigures, ", ")+" (default: all that apply)")
	f.Float64Var(&o.End, "end", 0, "fig1: MiLoRA's window start k−r (default: the largest window start in the runs)")
	f.StringSliceVar(&o.Series, "series", nil, "lr, curves: only these series, e.g. pissa,'window s=8'")
	f.StringSliceVar(&o.Curves, "curves", nil, "curves: curve names to draw (default: every curve, up to 3)")
	f.BoolVar(&o.IncludeFailed, "include-failed", false, "lr: count failed (e.g. diverged) runs as accuracy --failed-acc")
	f.Float64Var(&o.FailedAcc, "failed-acc", 10, "lr: the accuracy of a failed run with --include-failed (e.g. chance level, %)")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runResultsFigures(ctx context.Context, o resultsFiguresOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.OutDir == "" {
		return fmt.Errorf("--out: a directory for the figures is required")
	}
	want := o.Figures
	explicit := len(want) > 0
	if !explicit {
		want = allFigures
	}
	for _, f := range want {
		if !contains(allFigures, f) {
			return fmt.Errorf("--figure %q: expected one of %s", f, strings.Join(allFigures, ", "))
		}
	}
	sf, err := o.storeFilter()
	if err != nil {
		return err
	}
	st, err := openResults(o.resultsFilter)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := plots.FromStore(ctx, st, sf)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return fmt.Errorf("no done runs match the filters in %s", st.Path())
	}
	var failed []plots.Run
	if o.IncludeFailed {
		ff := sf
		ff.Statuses = []experiment.Status{experiment.StatusFailed}
		rows, err := st.Query(ctx, ff)
		if err != nil {
			return err
		}
		for _, r := range rows {
			failed = append(failed, plots.Run{ID: r.ID, Config: r.Config})
		}
	}
	curves := o.Curves
	if len(curves) == 0 {
		set := map[string]bool{}
		for _, r := range runs {
			for c := range r.Curves {
				set[c] = true
			}
		}
		for c := range set {
			curves = append(curves, c)
		}
		sort.Strings(curves)
		if len(curves) > 3 {
			curves = curves[:3]
		}
	}
	var drawn int
	for _, name := range want {
		var fig *figure.Figure
		var err error
		switch name {
		case "fig1":
			fig, err = plots.Figure1(runs, plots.Fig1Options{End: o.End})
		case "pareto":
			fig, err = plots.Pareto(runs, plots.Options{})
		case "lr":
			lrs := map[float64]bool{}
			for _, r := range runs {
				lrs[r.Config.LearningRate] = true
			}
			if len(lrs) < 2 {
				err = fmt.Errorf("the runs have a single learning rate")
				break
			}
			fig, err = plots.LRRobustness(runs, plots.LROptions{Series: o.Series, Failed: failed, IncludeFailed: o.IncludeFailed, FailedAcc: o.FailedAcc})
		case "curves":
			if len(curves) == 0 {
				err = fmt.Errorf("the runs have no curves")
				break
			}
			fig, err = plots.TrainingCurves(runs, curves, o.Series, plots.Options{})
		}
		if err != nil {
			if explicit {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Fprintf(o.Out, "skipped %s: %v\n", name, err)
			continue
		}
		base := filepath.Join(o.OutDir, name)
		if err := fig.Save(base); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "wrote %s.{svg,pdf,png}\n", base)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("no figure could be drawn from these runs")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
