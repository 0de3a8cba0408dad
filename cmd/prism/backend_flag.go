package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/backend"
)

// backendFlagName is the persistent root flag every command that computes
// with GoMLX honours.
const backendFlagName = "backend"

// backendFlagHelp documents --backend for every command.
const backendFlagHelp = `GoMLX backend for every computation: "go" (pure Go, the default), "go:OPTIONS",
"xla:cuda" (a PJRT plugin named cuda on $PJRT_PLUGIN_LIBRARY_PATH) or "xla:/abs/plugin.so";
default $PRISM_BACKEND, else go. prism never downloads a plugin (see 'prism doctor')`

// addBackendFlag registers the persistent --backend flag on the root
// command. A given --backend is exported as $PRISM_BACKEND before the
// sub-command runs, so core/backend.New("") — what every training command
// and library call uses — and every process prism starts (sweep tasks,
// Slurm array jobs) see the same choice.
func addBackendFlag(root *cobra.Command) {
	root.PersistentFlags().String(backendFlagName, "", backendFlagHelp)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		f := cmd.Flags().Lookup(backendFlagName)
		if f == nil || !f.Changed {
			return nil
		}
		spec := strings.TrimSpace(f.Value.String())
		if spec == "" {
			return fmt.Errorf("--backend is empty (want go, go:OPTIONS, xla:cuda or xla:/abs/plugin.so)")
		}
		return os.Setenv(backend.EnvVar, spec)
	}
}

// backendChoice is the backend spec a command would use and where it came from.
type backendChoice struct {
	Spec   string // e.g. "go", "xla:cuda"
	Source string // "--backend", "$PRISM_BACKEND" or "default"
}

func (c backendChoice) String() string {
	return fmt.Sprintf("%s (from %s)", c.Spec, c.Source)
}

// chooseBackend resolves the backend as core/backend.New("") will after
// the root's pre-run: the flag when given, else $PRISM_BACKEND, else the
// default.
func chooseBackend(flag string, flagSet bool) backendChoice {
	if flagSet {
		return backendChoice{Spec: strings.TrimSpace(flag), Source: "--backend"}
	}
	if env := strings.TrimSpace(os.Getenv(backend.EnvVar)); env != "" {
		return backendChoice{Spec: env, Source: "$" + backend.EnvVar}
	}
	return backendChoice{Spec: backend.DefaultSpec, Source: "default"}
}

// backendOf returns the choice for a running command (its inherited --backend).
func backendOf(cmd *cobra.Command) backendChoice {
	if f := cmd.Flags().Lookup(backendFlagName); f != nil {
		return chooseBackend(f.Value.String(), f.Changed)
	}
	return chooseBackend("", false)
}
