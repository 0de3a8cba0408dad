package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/store"
)

func init() {
	resultsSubcommands = append(resultsSubcommands, newResultsShowCmd, newResultsSpecsCmd)
}

// resultsShowOptions are the inputs of `prism results show`.
type resultsShowOptions struct {
	DB     string
	ID     string // run ID or unique prefix
	Curves bool   // print every curve point
	Out    io.Writer
}

func newResultsShowCmd() *cobra.Command {
	var o resultsShowOptions
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one run: configuration, status, metrics, curves and analysis summaries",
		Long: `Show prints everything stored about one run, named by its ID or any unique
prefix of it (the short IDs 'prism results' prints).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID, o.Out = args[0], cmd.OutOrStdout()
			return runResultsShow(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.DB, "db", "", "results database (default $PRISM_DB)")
	cmd.Flags().BoolVar(&o.Curves, "curves", false, "print every point of every curve (default: first and last)")
	return cmd
}

func runResultsShow(ctx context.Context, o resultsShowOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	st, err := openResults(resultsFilter{DB: o.DB})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(o.ID) < 4 {
		return fmt.Errorf("run ID %q: give at least 4 hex digits", o.ID)
	}
	rows, err := st.Query(ctx, store.Filter{IDPrefix: o.ID})
	if err != nil {
		return err
	}
	switch len(rows) {
	case 0:
		return fmt.Errorf("no run with ID %s… in %s", o.ID, st.Path())
	case 1:
	default:
		return fmt.Errorf("ID prefix %s matches %d runs; give more digits", o.ID, len(rows))
	}
	r := rows[0]
	w := o.Out
	fmt.Fprintf(w, "run %s\n  %s\n", r.ID, r.Config.Label())
	fmt.Fprintf(w, "status:   %s", r.Status)
	if r.Attempts > 0 {
		fmt.Fprintf(w, " (attempt %d)", r.Attempts)
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "error:    %s\n", strings.ReplaceAll(r.Error, "\n", "\n          "))
	}
	fmt.Fprintf(w, "specs:    %s\n", strings.Join(r.Specs, ", "))
	if r.Host != "" || r.Executor != "" {
		fmt.Fprintf(w, "where:    %s (%s)\n", r.Host, r.Executor)
	}
	if !r.Started.IsZero() {
		fmt.Fprintf(w, "started:  %s\n", r.Started.Format("2006-01-02 15:04:05 MST"))
	}
	if !math.IsNaN(r.WallSeconds) {
		fmt.Fprintf(w, "took:     %.3g s\n", r.WallSeconds)
	}
	cfg, err := json.MarshalIndent(r.Config, "  ", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "config:\n  %s\n", cfg)
	if len(r.Metrics) > 0 {
		fmt.Fprintln(w, "metrics:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, m := range store.MetricNames([]store.Row{r}) {
			fmt.Fprintf(tw, "  %s\t%s\n", m, strconv.FormatFloat(r.Metrics[m], 'g', 6, 64))
		}
		tw.Flush()
	}
	curves, err := st.Curves(ctx, []string{r.ID})
	if err != nil {
		return err
	}
	if c := curves[r.ID]; len(c) > 0 {
		fmt.Fprintln(w, "curves (epoch: value):")
		names := make([]string, 0, len(c))
		for n := range c {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			pts := c[n]
			var parts []string
			for i, p := range pts {
				if !o.Curves && len(pts) > 4 && i == 2 {
					parts = append(parts, fmt.Sprintf("… (%d points)", len(pts)-3))
				}
				if !o.Curves && len(pts) > 4 && i >= 2 && i < len(pts)-1 {
					continue
				}
				parts = append(parts, fmt.Sprintf("%g: %.4g", p.Epoch, p.Value))
			}
			fmt.Fprintf(w, "  %s  %s\n", n, strings.Join(parts, ", "))
		}
	}
	sums, err := st.Summaries(ctx, []string{r.ID})
	if err != nil {
		return err
	}
	if s := sums[r.ID]; len(s) > 0 {
		fmt.Fprintln(w, "analysis summaries:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, x := range s {
			scope := x.Scope
			if scope == "" {
				scope = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", scope, x.Key, strconv.FormatFloat(x.Value, 'g', 6, 64), x.Text)
		}
		tw.Flush()
	}
	return nil
}

// resultsSpecsOptions are the inputs of `prism results specs`.
type resultsSpecsOptions struct {
	DB  string
	Out io.Writer
}

func newResultsSpecsCmd() *cobra.Command {
	var o resultsSpecsOptions
	cmd := &cobra.Command{
		Use:   "specs",
		Short: "List the specs recorded in a database with their runs by status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			return runResultsSpecs(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.DB, "db", "", "results database (default $PRISM_DB)")
	return cmd
}

func runResultsSpecs(ctx context.Context, o resultsSpecsOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	st, err := openResults(resultsFilter{DB: o.DB})
	if err != nil {
		return err
	}
	defer st.Close()
	specs, err := st.Specs(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SPEC\tRUNS\tDONE\tFAILED\tRUNNING\tPENDING\tFILE\tUPDATED")
	for _, s := range specs {
		c := s.Counts
		total := c[experiment.StatusDone] + c[experiment.StatusFailed] + c[experiment.StatusRunning] + c[experiment.StatusPending]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, total, c[experiment.StatusDone], c[experiment.StatusFailed],
			c[experiment.StatusRunning], c[experiment.StatusPending], s.Path, s.Updated.Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}
