package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/slurm"
)

func init() { addCommand(newSweepTaskCmd) }

// sweepTaskOptions are the inputs of `prism sweep-task`.
type sweepTaskOptions struct {
	Dir      string // shared directory
	Manifest string // the array's manifest
	Index    int    // task index ($SLURM_ARRAY_TASK_ID)
}

func newSweepTaskCmd() *cobra.Command {
	var o sweepTaskOptions
	cmd := &cobra.Command{
		Use:    "sweep-task --dir DIR --manifest FILE --index N",
		Short:  "Run one run of a Slurm array (what 'prism sweep --executor slurm' submits)",
		Hidden: true,
		Long: `sweep-task is run by Slurm, once per array task: it reads the manifest's N-th
run ID, the run's configuration from DIR/runs/ID/config.json, runs it, and
writes its record atomically to DIR/runs/ID/result.json for the controller to
ingest. A run whose result is already there is not run again. The exit status
is 0 when the run is done, 3 when it failed (the reason is in the record), and
1 when it could not run or was interrupted (no record).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return slurm.RunTask(ctx, experiment.Kinds, o.Dir, o.Manifest, o.Index, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "the shared directory of the sweep")
	f.StringVar(&o.Manifest, "manifest", "", "the array's manifest.json")
	f.IntVar(&o.Index, "index", -1, "the task's index in the manifest ($SLURM_ARRAY_TASK_ID)")
	for _, name := range []string{"dir", "manifest", "index"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}
