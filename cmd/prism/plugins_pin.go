package main

import (
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/plugins/host"
)

func init() { pluginsSubcommands = append(pluginsSubcommands, newPluginsPinCmd) }

func newPluginsPinCmd() *cobra.Command {
	var o pluginsOptions
	cmd := &cobra.Command{
		Use:   "pin PATH...",
		Short: "Record the SHA-256 of plugin binaries in their directory's prism-plugins.json",
		Long: `pin trusts the given binaries as they are now: it writes each one's SHA-256 into
the manifest (prism-plugins.json) of its directory. prism refuses to run a
plugin without a pin, or whose binary no longer matches it. Each file must be
named prism-method-NAME or prism-dataset-NAME.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPluginsPin(o, args)
		},
	}
	addPluginsFlags(cmd, &o)
	return cmd
}

// runPluginsPin pins binaries in their directories' manifests.
func runPluginsPin(o pluginsOptions, paths []string) error {
	pins, err := host.PinFiles(paths...)
	if err != nil {
		return err
	}
	for _, path := range slices.Sorted(maps.Keys(pins)) {
		fmt.Fprintf(o.Out, "pinned %s  %s\n", pins[path], path)
	}
	return nil
}
