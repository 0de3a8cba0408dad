package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/protocol"
)

func init() { pluginsSubcommands = append(pluginsSubcommands, newPluginsListCmd) }

func newPluginsListCmd() *cobra.Command {
	var o pluginsOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List installed plugins: kind, name, version, checksum status, path",
		Long: `List prints one row per plugin found on the search path:
  KIND     method or dataset
  NAME     the name to give --method / --dataset and experiment specs
  VERSION  the method's version (started to ask it; - for datasets and plugins not run)
  STATUS   ok (matches its pinned SHA-256), unpinned, checksum-mismatch, missing,
           not-executable, or error: FAULT when it failed to start or answer
  SHA256   the first 12 hex digits of the binary's checksum
  PATH     the binary`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPluginsList(cmd.Context(), o)
		},
	}
	addPluginsFlags(cmd, &o)
	return cmd
}

// runPluginsList prints every installed plugin; the version comes from
// running the plugins whose checksum matches their pin.
func runPluginsList(ctx context.Context, o pluginsOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	h, err := o.host()
	if err != nil {
		return err
	}
	defer h.Close()
	all, err := h.Installed()
	if err != nil {
		return err
	}
	if len(all) == 0 {
		fmt.Fprintf(o.Out, "no plugins installed (searched %s)\n", strings.Join(h.Dirs(), ", "))
		return nil
	}
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tSTATUS\tSHA256\tPATH")
	for _, in := range all {
		version := "-"
		status := string(in.Status)
		if in.Status == host.StatusOK {
			if v, err := pluginVersion(ctx, h, in); err != nil {
				status = "error: " + string(host.FaultOf(err))
			} else {
				version = v
			}
		}
		sum := in.SHA256
		if len(sum) > 12 {
			sum = sum[:12]
		}
		if sum == "" {
			sum = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Kind, in.Name, version, status, sum, in.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nsearched: %s\n", strings.Join(h.Dirs(), ", "))
	return nil
}

func pluginVersion(ctx context.Context, h *host.Host, in host.Installed) (string, error) {
	switch in.Kind {
	case protocol.KindMethod:
		m, err := h.Method(ctx, in.Name)
		if err != nil {
			return "", err
		}
		return m.Metadata().Version, nil
	case protocol.KindDataset:
		d, err := h.Dataset(ctx, in.Name)
		if err != nil {
			return "", err
		}
		_ = d.Spec() // started and answered; datasets carry no version
		return "-", nil
	}
	return "", fmt.Errorf("unknown kind %q", in.Kind)
}
