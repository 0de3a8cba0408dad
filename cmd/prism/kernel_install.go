package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/prism-lora/prism/kernel"
	"github.com/prism-lora/prism/kernel/jupyter"
	"github.com/spf13/cobra"
)

func init() { kernelSubcommands = append(kernelSubcommands, newKernelInstallCmd) }

// kernelInstallOptions are the flags of `prism kernel install`.
type kernelInstallOptions struct {
	user      bool
	prefix    string
	sysPrefix bool
	repo      string
	toolsDir  string
	noSetup   bool
	quiet     bool
}

func newKernelInstallCmd() *cobra.Command {
	var o kernelInstallOptions
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Build GoNB and its tools from the pinned modules and register the prism kernel",
		Long: `install builds GoNB, goimports and gopls from the tools modules pinned in
kernel/tools (cached under $PRISM_TOOLS_DIR, default ~/.cache/prism/tools, keyed by
the pins and the Go version, so reruns are instant), makes sure Jupyter is
installed (running 'scripts/setup.sh jupyter' when run as root, otherwise printing
that command), and registers the kernelspec "prism" (display name "Go (prism)").

The kernel puts go, gonb, goimports and gopls on PATH, starts every notebook with a
go.work that uses this checkout (so 'import "github.com/prism-lora/prism/..."' works
from a notebook in any directory) and reports compile errors as Jupyter errors.

Where the kernelspec goes follows 'jupyter kernelspec install': --user (default;
$JUPYTER_DATA_DIR if set, else ~/.local/share/jupyter), --prefix DIR
(DIR/share/jupyter) or --sys-prefix (the Python environment's prefix).
Running it again only rewrites what changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKernelInstall(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.user, "user", false, "install for the current user (the default)")
	f.StringVar(&o.prefix, "prefix", "", "install under `DIR`/share/jupyter/kernels")
	f.BoolVar(&o.sysPrefix, "sys-prefix", false, "install into the Python environment's sys.prefix")
	f.StringVar(&o.repo, "repo", "", "prism checkout notebooks import from (default: found from the working `directory`)")
	f.StringVar(&o.toolsDir, "tools-dir", "", "cache `directory` for the built tools (default $PRISM_TOOLS_DIR or ~/.cache/prism/tools)")
	f.BoolVar(&o.noSetup, "no-setup", false, "never run scripts/setup.sh jupyter; only say how to install Jupyter if it is missing")
	f.BoolVar(&o.quiet, "quiet", false, "print only the final line")
	return cmd
}

// runKernelInstall installs the kernel and reports what it did to out.
func runKernelInstall(ctx context.Context, o kernelInstallOptions, out io.Writer) error {
	n := 0
	for _, set := range []bool{o.user, o.prefix != "", o.sysPrefix} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("kernel install: choose one of --user, --prefix and --sys-prefix")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	log := out
	if o.quiet {
		log = io.Discard
	}
	res, err := kernel.Install(ctx, kernel.InstallOptions{
		Repo:         o.repo,
		Location:     jupyter.Location{Prefix: o.prefix, SysPrefix: o.sysPrefix},
		ToolsDir:     o.toolsDir,
		SetupJupyter: !o.noSetup,
		Log:          log,
	})
	if err != nil {
		return fmt.Errorf("kernel install: %w", err)
	}
	state := "installed"
	if res.Unchanged {
		state = "already installed, unchanged"
	}
	fmt.Fprintf(out, "kernel %q (%s) %s in %s\n", kernel.Name, kernel.DisplayName, state, res.SpecDir)
	if !o.quiet {
		fmt.Fprintf(out, "  tools: %s (%s)\n  notebooks import %s from %s\n", res.Tools.Bin, res.Tools.Go.Version, kernel.ModulePath, res.Repo)
	}
	if !res.Registered {
		fmt.Fprintf(os.Stderr, "note: Jupyter does not list this kernelspec yet; add %s to JUPYTER_PATH\n", jupyterPathFor(o.prefix))
	}
	return nil
}

// jupyterPathFor is the JUPYTER_PATH entry that makes a --prefix install visible.
func jupyterPathFor(prefix string) string {
	if prefix == "" {
		return "its share/jupyter directory"
	}
	return prefix + "/share/jupyter"
}
