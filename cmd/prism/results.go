package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/store"
)

func init() { addCommand(newResultsCmd) }

// resultsSubcommands are `prism results`' sub-commands, registered by their
// files (results_show.go, results_figures.go).
var resultsSubcommands []func() *cobra.Command

// resultsFilter selects runs (flags shared by the results commands).
type resultsFilter struct {
	DB       string   // results database ("" = $PRISM_DB)
	Spec     string   // spec name
	Methods  []string // methods
	Statuses []string // pending | running | done | failed
	Where    []string // conditions FIELD OP VALUE
}

// resultsOptions are the inputs of `prism results`.
type resultsOptions struct {
	resultsFilter
	Sort    string   // field to sort by
	Desc    bool     // descending
	Limit   int      // at most this many rows (0 = all)
	Columns []string // columns ("" = automatic)
	Format  string   // table | csv | json | markdown
	OutFile string   // write here instead of Out ("" or "-" = Out)
	Out     io.Writer
}

func addFilterFlags(cmd *cobra.Command, f *resultsFilter) {
	fl := cmd.Flags()
	fl.StringVar(&f.DB, "db", "", "results database (default $PRISM_DB); a sweep writes OUTPUT/results.db")
	fl.StringVar(&f.Spec, "spec", "", "only runs of this spec (by name)")
	fl.StringSliceVar(&f.Methods, "method", nil, "only these methods (repeat or comma-separate)")
	fl.StringSliceVar(&f.Statuses, "status", nil, "only runs in these states: pending, running, done, failed")
	fl.StringArrayVar(&f.Where, "where", nil, "only runs where FIELD OP VALUE holds (repeatable, all must hold); OP: = != < <= > >= ~ (regexp);\nFIELD: a metric (b_acc, forgetting, …) or "+strings.Join(store.ConfigFields, ", "))
}

func newResultsCmd() *cobra.Command {
	var o resultsOptions
	cmd := &cobra.Command{
		Use:   "results",
		Short: "List, filter and export stored runs (table, CSV, JSON, markdown); show one; draw figures",
		Long: `Results lists the runs of a results database, one row each, with their
configuration, status and final metrics, filtered and sorted as asked.

Examples:
  prism results --db results/fig1/results.db
  prism results --db r.db --spec fig1 --method window --where 'b_acc>=80' --sort forgetting
  prism results --db r.db --status failed --columns short_id,series,lr,error
  prism results --db r.db --format csv --out runs.csv
  prism results show 1a2b3c --db r.db          (one run: configuration, metrics, curves)
  prism results specs --db r.db                (the specs and their progress)
  prism results figures --db r.db --out figs   (paper figures)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			return runResults(cmd.Context(), o)
		},
	}
	addFilterFlags(cmd, &o.resultsFilter)
	f := cmd.Flags()
	f.StringVar(&o.Sort, "sort", "", "sort by this field or metric (runs without it last)")
	f.BoolVar(&o.Desc, "desc", false, "sort descending")
	f.IntVar(&o.Limit, "limit", 0, "show at most this many runs")
	f.StringSliceVar(&o.Columns, "columns", nil, "columns to show, comma-separated (default: the configuration that varies, status, every metric)")
	f.StringVar(&o.Format, "format", "table", "output format: table, csv, json or markdown")
	f.StringVarP(&o.OutFile, "out", "o", "", "write to this file (atomically) instead of standard output")
	for _, newSub := range resultsSubcommands {
		cmd.AddCommand(newSub())
	}
	return cmd
}

// openResults opens the database named by the filter (or $PRISM_DB).
func openResults(f resultsFilter) (*store.Store, error) {
	db := f.DB
	if db == "" {
		db = os.Getenv("PRISM_DB")
	}
	if db == "" {
		return nil, errors.New("no results database: pass --db PATH (a sweep writes OUTPUT/results.db) or set PRISM_DB")
	}
	if _, err := os.Stat(db); err != nil {
		return nil, fmt.Errorf("results database %s: %w", db, err)
	}
	return store.Open(db)
}

// storeFilter converts the flags to a store filter.
func (f resultsFilter) storeFilter() (store.Filter, error) {
	sf := store.Filter{Spec: f.Spec, Methods: f.Methods}
	for _, s := range f.Statuses {
		switch st := experiment.Status(s); st {
		case experiment.StatusPending, experiment.StatusRunning, experiment.StatusDone, experiment.StatusFailed:
			sf.Statuses = append(sf.Statuses, st)
		default:
			return sf, fmt.Errorf("--status %q: expected pending, running, done or failed", s)
		}
	}
	for _, w := range f.Where {
		c, err := store.ParseCondition(w)
		if err != nil {
			return sf, fmt.Errorf("--where: %w", err)
		}
		sf.Where = append(sf.Where, c)
	}
	return sf, nil
}

// runResults prints the selected runs.
func runResults(ctx context.Context, o resultsOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	sf, err := o.storeFilter()
	if err != nil {
		return err
	}
	sf.Sort, sf.Descending, sf.Limit = o.Sort, o.Desc, o.Limit
	st, err := openResults(o.resultsFilter)
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.Query(ctx, sf)
	if err != nil {
		return err
	}
	cols := o.Columns
	if len(cols) == 0 {
		cols = defaultColumns(rows, o.Format)
	} else if err := store.CheckFields(rows, cols...); err != nil {
		return fmt.Errorf("--columns: %w", err)
	}
	var buf bytes.Buffer
	switch o.Format {
	case "table", "":
		if len(rows) == 0 {
			fmt.Fprintln(&buf, "no runs match")
			break
		}
		writeTable(&buf, rows, cols, false)
		fmt.Fprintf(&buf, "%d run(s)\n", len(rows))
	case "markdown", "md":
		writeTable(&buf, rows, cols, true)
	case "csv":
		if err := writeCSV(&buf, rows, cols); err != nil {
			return err
		}
	case "json":
		if err := writeJSON(&buf, rows); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--format %q: expected table, csv, json or markdown", o.Format)
	}
	if o.OutFile != "" && o.OutFile != "-" {
		if err := experiment.WriteFileAtomic(o.OutFile, buf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "wrote %d run(s) to %s\n", len(rows), o.OutFile)
		return nil
	}
	_, err = o.Out.Write(buf.Bytes())
	return err
}

// defaultColumns: identity, the configuration fields that vary among rows,
// status, every metric; CSV gets every field.
func defaultColumns(rows []store.Row, format string) []string {
	metrics := store.MetricNames(rows)
	if format == "csv" {
		var cols []string
		for _, f := range store.ConfigFields {
			if f != "short_id" {
				cols = append(cols, f)
			}
		}
		return append(cols, metrics...)
	}
	cols := []string{"short_id"}
	for _, f := range []string{"spec", "model", "tasks", "series", "rank", "alpha", "lr", "epochs", "seed"} {
		if varies(rows, f) || f == "series" {
			cols = append(cols, f)
		}
	}
	cols = append(cols, "status")
	cols = append(cols, metrics...)
	anyFailed := false
	for _, r := range rows {
		anyFailed = anyFailed || r.Status == experiment.StatusFailed
	}
	if anyFailed {
		cols = append(cols, "error")
	}
	return cols
}

func varies(rows []store.Row, field string) bool {
	seen := map[string]bool{}
	for _, r := range rows {
		v, _ := r.Field(field)
		seen[v.Str] = true
	}
	return len(seen) > 1
}

// cell formats a field for a table (short) or CSV (exact).
func cell(r store.Row, col string, exact bool) string {
	v, ok := r.Field(col)
	if !ok {
		if exact {
			return ""
		}
		return "-"
	}
	if !v.IsNum {
		s := v.Str
		if !exact {
			s = strings.ReplaceAll(firstLineOf(s), "\t", " ")
			if col == "error" && len([]rune(s)) > 60 {
				s = string([]rune(s)[:59]) + "…"
			}
		}
		return s
	}
	switch {
	case math.IsNaN(v.Num):
		if exact {
			return ""
		}
		return "NaN"
	case exact:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case col == "lr" || col == "alpha" || col == "window_fraction":
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case v.Num == math.Trunc(v.Num) && math.Abs(v.Num) < 1e15:
		return strconv.FormatFloat(v.Num, 'f', -1, 64)
	}
	return strconv.FormatFloat(v.Num, 'g', 5, 64)
}

func writeTable(w io.Writer, rows []store.Row, cols []string, markdown bool) {
	if markdown {
		fmt.Fprintf(w, "| %s |\n", strings.Join(cols, " | "))
		seps := make([]string, len(cols))
		for i := range seps {
			seps[i] = "---"
		}
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, r := range rows {
			cells := make([]string, len(cols))
			for i, c := range cols {
				cells[i] = strings.ReplaceAll(cell(r, c, false), "|", `\|`)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, r := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(r, c, false)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func writeCSV(w io.Writer, rows []store.Row, cols []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return err
	}
	for _, r := range rows {
		rec := make([]string, len(cols))
		for i, c := range cols {
			rec[i] = cell(r, c, true)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// jsonNumber is a float that encodes NaN as null.
type jsonNumber float64

func (f jsonNumber) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(x, 'g', -1, 64)), nil
}

type jsonRun struct {
	ID       string                `json:"id"`
	Specs    []string              `json:"specs"`
	Status   experiment.Status     `json:"status"`
	Error    string                `json:"error,omitempty"`
	Attempts int                   `json:"attempts"`
	Host     string                `json:"host,omitempty"`
	Executor string                `json:"executor,omitempty"`
	Started  string                `json:"started,omitempty"`
	Finished string                `json:"finished,omitempty"`
	Seconds  *jsonNumber           `json:"seconds,omitempty"`
	Config   experiment.RunConfig  `json:"config"`
	Metrics  map[string]jsonNumber `json:"metrics"`
}

func writeJSON(w io.Writer, rows []store.Row) error {
	out := make([]jsonRun, 0, len(rows))
	for _, r := range rows {
		j := jsonRun{ID: r.ID, Specs: r.Specs, Status: r.Status, Error: r.Error, Attempts: r.Attempts,
			Host: r.Host, Executor: r.Executor, Config: r.Config, Metrics: map[string]jsonNumber{}}
		if v, ok := r.Field("started"); ok {
			j.Started = v.Str
		}
		if v, ok := r.Field("finished"); ok {
			j.Finished = v.Str
		}
		if !math.IsNaN(r.WallSeconds) {
			s := jsonNumber(r.WallSeconds)
			j.Seconds = &s
		}
		for k, v := range r.Metrics {
			j.Metrics[k] = jsonNumber(v)
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
