package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prism-lora/prism/kernel"
	"github.com/spf13/cobra"
)

func init() { kernelSubcommands = append(kernelSubcommands, newKernelDoctorCmd) }

// kernelDoctorOptions are the flags of `prism kernel doctor`.
type kernelDoctorOptions struct {
	repo     string
	toolsDir string
	timeout  time.Duration
	kernel   string
}

// errChecksFailed is returned when the doctor found problems (exit status 1).
type errChecksFailed struct{ n int }

func (e errChecksFailed) Error() string { return fmt.Sprintf("kernel doctor: %d check(s) failed", e.n) }
func (e errChecksFailed) ExitCode() int { return 1 }

func newKernelDoctorCmd() *cobra.Command {
	var o kernelDoctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the Go toolchain, Jupyter, the prism kernel and its tools, and run a test notebook",
		Long: `doctor checks, in order: the Go toolchain; Jupyter (kernelspec and nbconvert); that
the "prism" kernelspec is registered, and the programs, go.work checkout and PATH
directories it names exist; GoNB, goimports and gopls at the pinned versions (read
from the binaries' build information); that the tools match the checkout's pins;
that a cell runs; and that a notebook importing a prism package compiles and runs.

It prints a checklist: every failure comes with the command that fixes it, and
checks that depend on a failed one are skipped. The exit status is non-zero when
anything failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelDoctor(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.repo, "repo", "", "prism checkout whose tool pins to compare with (default: the kernel's go.work `directory`)")
	f.StringVar(&o.toolsDir, "tools-dir", "", "tools cache `directory` (default $PRISM_TOOLS_DIR or ~/.cache/prism/tools)")
	f.DurationVar(&o.timeout, "timeout", 3*time.Minute, "time limit for the test notebook's execution")
	f.StringVar(&o.kernel, "kernel", kernel.Name, "kernelspec `name` to check")
	return cmd
}

// runKernelDoctor prints the checklist and fails when a check failed.
func runKernelDoctor(ctx context.Context, o kernelDoctorOptions, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	r := kernel.Doctor(ctx, kernel.DoctorOptions{Repo: o.repo, ToolsDir: o.toolsDir, Timeout: o.timeout, Kernel: o.kernel})
	r.Write(out)
	if n := len(r.Failed()); n > 0 {
		return errChecksFailed{n}
	}
	fmt.Fprintln(out, "the prism kernel is ready")
	return nil
}
