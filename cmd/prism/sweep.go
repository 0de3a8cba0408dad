package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/slurm"
	"github.com/prism-lora/prism/core/experiment/store"
)

func init() { addCommand(newSweepCmd) }

// sweepOptions are the inputs of `prism sweep`.
type sweepOptions struct {
	Spec           string               // spec file
	Executor       string               // local | slurm ("" = the spec's executor.kind)
	Wait           bool                 // slurm: follow the arrays and ingest until they end
	Workers        int                  // local: parallel runs (0 = the spec's, else sized to the machine)
	DB             string               // results database ("" = OUTPUT/results.db)
	SkipFailed     bool                 // leave runs recorded as failed alone
	DryRun         bool                 // list the runs and their status, run nothing
	SharedDir      string               // slurm: shared directory ("" = the spec's, else OUTPUT/slurm)
	Prism          string               // slurm: binary the tasks run ("" = this executable)
	AllowNetworkDB bool                 // accept a database on a network file system
	Kinds          *experiment.Registry // run kinds (nil = experiment.Kinds)
	Out            io.Writer
}

// sweepFailed is the error of a sweep that finished with failed runs.
type sweepFailed struct {
	n  int
	db string
}

func (e *sweepFailed) Error() string {
	return fmt.Sprintf("%d run(s) failed; see prism results --db %s --status failed", e.n, e.db)
}

func (e *sweepFailed) ExitCode() int { return 3 }

func newSweepCmd() *cobra.Command {
	var o sweepOptions
	cmd := &cobra.Command{
		Use:   "sweep SPEC.yaml",
		Short: "Run every grid point of an experiment spec, resumably, locally or on Slurm",
		Long: `Sweep expands the spec's grid into runs (see docs/experiments.md for the spec
format and the expansion rules), records them in the results database, and runs
those without a stored result. Each run is identified by the SHA-256 of its full
resolved configuration, so running the same spec again skips finished runs and
continues where it stopped; killing the process at any moment (even SIGKILL)
loses at most the runs in progress, which run again next time. Runs recorded
as failed are retried unless --skip-failed.

Executors:
  local   (default) a pool of --workers parallel runs on this machine, with
          progress: runs done/total, failures, ETA, and each run's progress.
  slurm   submits one Slurm job-array task per pending run (sbatch). Tasks run
          'prism sweep-task' on the compute nodes and write their results to
          files in the shared directory; this command ingests them into the
          database (which stays on this machine's local disk). With --wait it
          polls squeue until the arrays end, ingesting as tasks finish;
          without, run the same command again later to ingest and to submit
          what is still missing (runs queued or running are not resubmitted).

The run kinds this prism knows: ` + strings.Join(experiment.Kinds.Names(), ", ") + `.

Exit status: 0 when every run is done, 3 when some failed (their reasons are
in the database: prism results --status failed), 1 on any other error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Spec = args[0]
			o.Out = cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSweep(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Executor, "executor", "", "where runs execute: local or slurm (default: the spec's executor.kind, else local)")
	f.BoolVar(&o.Wait, "wait", false, "slurm: follow the submitted arrays until they end, ingesting results as tasks finish")
	f.IntVar(&o.Workers, "workers", 0, "local: runs executed at once (default: the spec's executor.workers, else cores / threads per run)")
	f.StringVar(&o.DB, "db", "", "results database (default OUTPUT/results.db, OUTPUT from the spec)")
	f.BoolVar(&o.SkipFailed, "skip-failed", false, "do not run again the runs recorded as failed")
	f.BoolVar(&o.DryRun, "dry-run", false, "list the runs with their IDs and stored status; run nothing")
	f.StringVar(&o.SharedDir, "shared-dir", "", "slurm: directory shared with the compute nodes (default: the spec's executor.slurm.shared_dir, else OUTPUT/slurm)")
	f.StringVar(&o.Prism, "prism", "", "slurm: the prism binary the tasks run (default: the spec's executor.slurm.prism, else this executable)")
	f.BoolVar(&o.AllowNetworkDB, "allow-network-db", false, "accept a database on a network file system (NFS, Lustre, …), where SQLite may corrupt")
	return cmd
}

// runSweep runs (or submits) the spec's pending runs.
func runSweep(ctx context.Context, o sweepOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	kinds := o.Kinds
	if kinds == nil {
		kinds = experiment.Kinds
	}
	spec, err := experiment.LoadSpec(o.Spec)
	if err != nil {
		return err
	}
	kind, err := kinds.Lookup(spec.Kind)
	if err != nil {
		return spec.Errorf("kind", "%v", err)
	}
	runs, err := spec.Expand()
	if err != nil {
		return err
	}
	if err := spec.ValidateRuns(runs, kind); err != nil {
		return err
	}
	executor := o.Executor
	if executor == "" {
		executor = spec.Executor.Kind
	}
	if executor != "local" && executor != "slurm" {
		return fmt.Errorf("--executor %q: expected local or slurm", executor)
	}
	if o.Wait && executor != "slurm" {
		return errors.New("--wait applies to --executor slurm (a local sweep always runs to the end)")
	}
	db := o.DB
	if db == "" {
		db = filepath.Join(spec.Output, "results.db")
	}
	if o.DryRun {
		return dryRun(ctx, o.Out, spec, runs, db)
	}
	if !o.AllowNetworkDB {
		if err := store.CheckLocalFS(db); err != nil {
			return fmt.Errorf("%w (or pass --allow-network-db)", err)
		}
	}
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(o.Out, "spec %s (%s): %s; results in %s\n", spec.Name, spec.File, experiment.Describe(runs), db)

	if executor == "local" {
		workers := o.Workers
		if workers <= 0 {
			workers = spec.Executor.Workers
		}
		sum, err := runner.Sweep(ctx, st, spec, runs, kind, runner.Options{Workers: workers, Out: o.Out, SkipFailed: o.SkipFailed})
		if err != nil {
			return err
		}
		for _, f := range sum.Failures {
			fmt.Fprintf(o.Out, "failed: %s %s: %s\n", experiment.ShortID(f.ID), f.Label, firstLineOf(f.Error))
		}
		return finalStatus(ctx, o.Out, st, spec, runs, db)
	}

	shared := o.SharedDir
	if shared == "" {
		shared = spec.Executor.Slurm.SharedDir
	}
	if shared == "" {
		shared = filepath.Join(spec.Output, "slurm")
	}
	if shared, err = filepath.Abs(shared); err != nil {
		return err
	}
	prism := o.Prism
	if prism == "" {
		prism = spec.Executor.Slurm.Prism
	}
	if prism == "" {
		if prism, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this executable for the Slurm tasks: %w (pass --prism)", err)
		}
	}
	if prism, err = filepath.Abs(prism); err != nil {
		return err
	}
	opt := slurm.Options{
		Dir: shared, Prism: prism, Settings: spec.Executor.Slurm, SkipFailed: o.SkipFailed, Out: o.Out,
		Poll: spec.Executor.Slurm.Poll.Duration(),
	}
	sub, err := slurm.Submit(ctx, st, spec, runs, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "slurm: %d run(s) finished, %d already queued or running, %d submitted", sub.Finished, sub.InFlight, sub.Runs)
	if len(sub.JobIDs) > 0 {
		fmt.Fprintf(o.Out, " as array(s) %s", strings.Join(sub.JobIDs, ", "))
	}
	fmt.Fprintln(o.Out)
	if !o.Wait {
		if sub.Runs+sub.InFlight > 0 {
			fmt.Fprintf(o.Out, "run 'prism sweep %s --executor slurm --wait' to follow the tasks and ingest their results\n", o.Spec)
			return nil
		}
		return finalStatus(ctx, o.Out, st, spec, runs, db)
	}
	if _, err := slurm.Wait(ctx, st, spec, runs, opt); err != nil {
		return err
	}
	return finalStatus(ctx, o.Out, st, spec, runs, db)
}

// finalStatus prints how the spec's runs stand and returns sweepFailed when
// some failed.
func finalStatus(ctx context.Context, out io.Writer, st *store.Store, spec *experiment.Spec, runs []experiment.Run, db string) error {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	status, err := st.Statuses(ctx, ids)
	if err != nil {
		return err
	}
	counts := map[experiment.Status]int{}
	for _, id := range ids {
		counts[status[id]]++
	}
	fmt.Fprintf(out, "spec %s: %d/%d runs done, %d failed; prism results --db %s --spec %s\n",
		spec.Name, counts[experiment.StatusDone], len(runs), counts[experiment.StatusFailed], db, spec.Name)
	if n := counts[experiment.StatusFailed]; n > 0 {
		return &sweepFailed{n: n, db: db}
	}
	return nil
}

func dryRun(ctx context.Context, out io.Writer, spec *experiment.Spec, runs []experiment.Run, db string) error {
	status := map[string]experiment.Status{}
	if _, err := os.Stat(db); err == nil {
		st, err := store.Open(db)
		if err != nil {
			return err
		}
		defer st.Close()
		ids := make([]string, len(runs))
		for i, r := range runs {
			ids[i] = r.ID
		}
		if status, err = st.Statuses(ctx, ids); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "spec %s: %s\n", spec.Name, experiment.Describe(runs))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tRUN")
	for _, r := range runs {
		s := status[r.ID]
		if s == "" {
			s = "new"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", experiment.ShortID(r.ID), s, r.Config.Label())
	}
	return tw.Flush()
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
