package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/prism-lora/prism/kernel"
	"github.com/prism-lora/prism/kernel/jupyter"
	"github.com/prism-lora/prism/kernel/notebook"
	"github.com/spf13/cobra"
)

func init() { kernelSubcommands = append(kernelSubcommands, newKernelRunCmd) }

// kernelRunOptions are the flags of `prism kernel run`.
type kernelRunOptions struct {
	small       bool
	inPlace     bool
	outDir      string
	cellTimeout time.Duration
	kernel      string
}

func newKernelRunCmd() *cobra.Command {
	var o kernelRunOptions
	cmd := &cobra.Command{
		Use:   "run NOTEBOOK.ipynb...",
		Short: "Execute notebooks headless with the prism kernel and check their outputs",
		Long: `run executes each notebook in a fresh kernel with
'jupyter nbconvert --to notebook --execute --allow-errors' (the exact command is
printed), in the notebook's own directory, into a copy under --out, then checks
the copy like 'prism kernel check': any error output, panic, non-zero exit status
or compile error fails the notebook. The exit status is non-zero when any notebook
failed.

--small sets PRISM_NOTEBOOK_SMALL=1 for the cells (CI's small mode: notebooks shrink
their data and epochs; read it with notebook.Small()); without it the variable is
cleared. --in-place refreshes the committed notebook with its executed outputs, only
when its check passes (what 'make notebooks' does).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelRun(cmd.Context(), o, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.small, "small", notebook.Small(), "small mode: set PRISM_NOTEBOOK_SMALL=1 for the cells (default: on when PRISM_NOTEBOOK_SMALL is set)")
	f.BoolVar(&o.inPlace, "in-place", false, "overwrite each notebook with its executed version when its check passes")
	f.StringVar(&o.outDir, "out", "", "`directory` for the executed copies (default: a new temporary directory)")
	f.DurationVar(&o.cellTimeout, "cell-timeout", 10*time.Minute, "time limit for one cell")
	f.StringVar(&o.kernel, "kernel", kernel.Name, "kernelspec `name` to run the notebooks with")
	return cmd
}

// runKernelRun executes and checks each notebook in turn.
func runKernelRun(ctx context.Context, o kernelRunOptions, paths []string, out, errOut io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	jup, err := jupyter.Find()
	if err != nil {
		return fmt.Errorf("kernel run: %w", err)
	}
	outDir := o.outDir
	if outDir == "" {
		if outDir, err = os.MkdirTemp("", "prism-notebooks-"); err != nil {
			return err
		}
	}
	failed := 0
	for _, p := range paths {
		res, err := notebook.Run(ctx, p, notebook.RunOptions{
			Jupyter:     jup,
			Kernel:      o.kernel,
			Small:       o.small,
			InPlace:     o.inPlace,
			OutDir:      outDir,
			CellTimeout: o.cellTimeout,
			Log:         func(format string, args ...any) { fmt.Fprintf(errOut, format+"\n", args...) },
		})
		if err != nil {
			fmt.Fprintf(out, "FAIL  %s\n      %s\n", p, indent(err.Error(), "      "))
			failed++
			if ctx.Err() != nil {
				break
			}
			continue
		}
		reportProblems(out, p, res.Problems)
		fmt.Fprintf(out, "      %s in %s\n", res.Executed, res.Elapsed.Round(100*time.Millisecond))
		if !res.OK() {
			failed++
		}
	}
	if failed > 0 {
		return errNotebooksFailed{failed, len(paths)}
	}
	return nil
}
