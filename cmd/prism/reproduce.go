package main

import "github.com/spf13/cobra"

func init() { addCommand(newReproduceCmd) }

// reproduceConstructors are the experiments under `prism reproduce`, each
// registered from its own file with addReproduceCommand.
var reproduceConstructors []func() *cobra.Command

// addReproduceCommand registers a `prism reproduce NAME` sub-command.
func addReproduceCommand(newCmd func() *cobra.Command) {
	reproduceConstructors = append(reproduceConstructors, newCmd)
}

// newReproduceCmd is `prism reproduce`: the paper's experiments end to end.
func newReproduceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reproduce",
		Short: "Run one of the paper's experiments end to end (data, pretraining, sweep, figures, tables)",
		Long: `Each experiment runs end to end: it fetches and verifies the data, pretrains the
task-A model (cached by content, so reruns reuse it), runs the sweep with results in a
crash-safe SQLite database (rerunning resumes), and writes figures (SVG, PDF, PNG) and
a markdown table into --out. --quick runs a reduced setting that finishes in minutes.`,
	}
	for _, newSub := range reproduceConstructors {
		cmd.AddCommand(newSub())
	}
	return cmd
}
