package main

import (
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/plugins/host"
)

func init() { addCommand(newPluginsCmd) }

// pluginsSubcommands are the constructors of `prism plugins`' sub-commands,
// registered by their files (plugins_list.go, plugins_inspect.go,
// plugins_pin.go).
var pluginsSubcommands []func() *cobra.Command

// pluginsOptions are the inputs shared by the plugins sub-commands.
type pluginsOptions struct {
	Dirs    []string      // plugin directories; empty: the search path
	Timeout time.Duration // deadline to start a plugin and for each call to it
	Kind    string        // inspect: method or dataset, when both have the name
	Out     io.Writer
}

// addPluginsFlags registers the flags every plugins sub-command takes.
func addPluginsFlags(cmd *cobra.Command, o *pluginsOptions) {
	o.Out = os.Stdout
	cmd.Flags().StringArrayVar(&o.Dirs, "dir", nil, "search only this plugin directory (repeatable; default: the search path, see 'prism plugins --help')")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Second, "deadline for starting a plugin and for each call to it")
}

func (o pluginsOptions) host() (*host.Host, error) {
	opts := host.Options{CallTimeout: o.Timeout, StartTimeout: o.Timeout}
	if len(o.Dirs) > 0 {
		opts.Dirs = o.Dirs
	}
	return host.New(opts)
}

// newPluginsCmd is `prism plugins`, the parent of the plugin commands.
func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List, inspect and pin method and dataset plugins",
		Long: `Plugins add initialisation methods and datasets to prism without rebuilding it.
A plugin is an executable named prism-method-NAME or prism-dataset-NAME. prism
looks for plugins in the directories of $PRISM_PLUGIN_PATH (colon-separated),
then in "plugins" beside the prism executable (where 'make plugins' puts the
reference plugins: bin/plugins), then in ~/.local/share/prism/plugins
($XDG_DATA_HOME/prism/plugins). The first plugin of a kind and name wins.
Each directory's prism-plugins.json pins the SHA-256 of its binaries; prism
runs only binaries that match their pin ('prism plugins pin PATH').
Use a plugin by name like a built-in: --method NAME, --dataset NAME.`,
	}
	for _, newSub := range pluginsSubcommands {
		cmd.AddCommand(newSub())
	}
	return cmd
}
