// Command prism is the command-line face of the prism workbench: component-window
// LoRA initialisation, fine-tuning, analysis and experiments.
//
// Each sub-command lives in its own file; the file registers its constructor
// with addCommand in an init function, and keeps its flags apart from the
// function that does the work so tests can call the work directly.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commandConstructors are the top-level sub-commands, registered by each file.
var commandConstructors []func() *cobra.Command

// addCommand registers a top-level sub-command constructor.
func addCommand(newCmd func() *cobra.Command) {
	commandConstructors = append(commandConstructors, newCmd)
}

// exitCoder is an error that carries its own process exit status.
type exitCoder interface{ ExitCode() int }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "prism",
		Short: "Component-window LoRA: initialise, fine-tune, analyse and compare adapters",
		Long: `prism is a research workbench for component-window LoRA: low-rank adapters
initialised from any window of a weight matrix's singular components (PiSSA = the
top window, MiLoRA = the bottom one, and everything between), and for measuring
how much each choice learns on a new task and how much it forgets of the old one.

Start with 'prism reproduce fig1 --quick', or 'prism lowrank init --help'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addBackendFlag(root)
	for _, newCmd := range commandConstructors {
		root.AddCommand(newCmd())
	}
	return root
}

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "prism:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}
