package main

import (
	"fmt"
	"io"

	"github.com/prism-lora/prism/kernel/notebook"
	"github.com/spf13/cobra"
)

func init() { kernelSubcommands = append(kernelSubcommands, newKernelCheckCmd) }

func newKernelCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check EXECUTED.ipynb...",
		Short: "Fail when an executed notebook's outputs hold an error, panic or non-zero exit",
		Long: `check reads notebooks that were already executed (for example by
'jupyter nbconvert --execute') and fails when any code cell's output holds an error
output, a Go panic or fatal error ("panic:", "goroutine N [...]", "fatal error:"),
a non-zero "exit status", a process killed by a signal, a compile error, a Python
traceback, or when a code cell never ran. nbconvert itself exits 0 when a GoNB cell
panics or calls os.Exit, which is why this check exists.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelCheck(args, cmd.OutOrStdout())
		},
	}
}

// errNotebooksFailed reports notebooks that failed (exit status 1).
type errNotebooksFailed struct{ failed, total int }

func (e errNotebooksFailed) Error() string {
	return fmt.Sprintf("%d of %d notebook(s) failed", e.failed, e.total)
}
func (e errNotebooksFailed) ExitCode() int { return 1 }

// runKernelCheck checks each executed notebook and lists its problems.
func runKernelCheck(paths []string, out io.Writer) error {
	failed := 0
	for _, p := range paths {
		problems, err := notebook.CheckFile(p)
		if err != nil {
			return fmt.Errorf("kernel check: %w", err)
		}
		reportProblems(out, p, problems)
		if len(problems) > 0 {
			failed++
		}
	}
	if failed > 0 {
		return errNotebooksFailed{failed, len(paths)}
	}
	return nil
}

// reportProblems prints "ok PATH" or "FAIL PATH" and the problems, indented.
func reportProblems(out io.Writer, path string, problems []notebook.Problem) {
	if len(problems) == 0 {
		fmt.Fprintf(out, "ok    %s\n", path)
		return
	}
	fmt.Fprintf(out, "FAIL  %s\n", path)
	for _, p := range problems {
		fmt.Fprintf(out, "      %s\n", indent(p.String(), "        "))
	}
}

func indent(s, prefix string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, prefix...)
		}
	}
	return string(out)
}
