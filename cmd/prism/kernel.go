package main

import "github.com/spf13/cobra"

// kernelSubcommands are the `prism kernel` sub-commands, registered by the
// kernel_*.go files.
var kernelSubcommands []func() *cobra.Command

func init() { addCommand(newKernelCmd) }

func newKernelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernel",
		Short: "Install, check and use the Go Jupyter kernel for prism's notebooks",
		Long: `The prism kernel is GoNB (a Go kernel for Jupyter) built from the versions pinned in
kernel/tools, registered with Jupyter as "Go (prism)". Notebooks using it can import
prism's packages from any directory, and their errors are reported as errors.

  prism kernel install        build the tools and register the kernel (idempotent)
  prism kernel doctor         check every piece and say how to fix what is missing
  prism kernel run NB...      execute notebooks headless and check their outputs
  prism kernel check NB...    check already executed notebooks`,
	}
	for _, newCmd := range kernelSubcommands {
		cmd.AddCommand(newCmd())
	}
	return cmd
}
