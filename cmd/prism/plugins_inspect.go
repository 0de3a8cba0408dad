package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/method/hyperparam"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/protocol"
)

func init() { pluginsSubcommands = append(pluginsSubcommands, newPluginsInspectCmd) }

func newPluginsInspectCmd() *cobra.Command {
	var o pluginsOptions
	cmd := &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show one plugin: where it is, its checksum, its metadata and hyperparameters (or dataset spec)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPluginsInspect(cmd.Context(), o, args[0])
		},
	}
	addPluginsFlags(cmd, &o)
	cmd.Flags().StringVar(&o.Kind, "kind", "", "method or dataset, when plugins of both kinds have NAME")
	return cmd
}

// runPluginsInspect prints everything known about one plugin.
func runPluginsInspect(ctx context.Context, o pluginsOptions, name string) error {
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
	var found []host.Installed
	for _, in := range all {
		if in.Name == name && (o.Kind == "" || string(in.Kind) == o.Kind) {
			found = append(found, in)
		}
	}
	switch {
	case len(found) == 0:
		return fmt.Errorf("no plugin named %q (searched %s); `prism plugins list` shows what is installed", name, strings.Join(h.Dirs(), ", "))
	case len(found) > 1:
		return fmt.Errorf("a method and a dataset plugin are both named %q: choose one with --kind", name)
	}
	in := found[0]
	w := o.Out
	fmt.Fprintf(w, "%s plugin %s\n", in.Kind, in.Name)
	fmt.Fprintf(w, "  path:      %s\n", in.Path)
	fmt.Fprintf(w, "  status:    %s\n", in.Status)
	fmt.Fprintf(w, "  sha256:    %s\n", orDash(in.SHA256))
	fmt.Fprintf(w, "  pinned:    %s\n", orDash(in.Pin))
	for _, s := range in.Shadowed {
		fmt.Fprintf(w, "  shadows:   %s\n", s)
	}
	if in.Status != host.StatusOK {
		fmt.Fprintf(w, "  (not run: %s)\n", explainStatus(in.Status))
		return nil
	}
	switch in.Kind {
	case protocol.KindMethod:
		m, err := h.Method(ctx, name)
		if err != nil {
			return err
		}
		md := m.Metadata()
		fmt.Fprintf(w, "  version:   %s\n", md.Version)
		fmt.Fprintf(w, "  about:     %s\n", md.Description)
		fmt.Fprintf(w, "  needs SVD: %v\n", md.NeedsSVD)
		if len(md.Hyperparameters) == 0 {
			fmt.Fprintln(w, "  hyperparameters: none")
			return nil
		}
		fmt.Fprintln(w, "  hyperparameters:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    NAME\tTYPE\tDEFAULT\tALLOWED\tDESCRIPTION")
		for _, p := range md.Hyperparameters {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, hyperparam.Format(p.Type, p.Default), allowed(p.Min, p.Max, p.Choices), p.Description)
		}
		return tw.Flush()
	case protocol.KindDataset:
		d, err := h.Dataset(ctx, name)
		if err != nil {
			return err
		}
		s := d.Spec()
		fmt.Fprintf(w, "  about:     %s\n", s.Description)
		fmt.Fprintf(w, "  task:      %s\n", s.Task)
		var splits []string
		for _, sp := range s.Splits {
			splits = append(splits, fmt.Sprintf("%s %d", sp.Name, sp.Size))
		}
		fmt.Fprintf(w, "  splits:    %s\n", strings.Join(splits, ", "))
		fmt.Fprintf(w, "  example:   %v %s\n", s.ExampleShape, s.DType)
		if len(s.Classes) > 0 {
			fmt.Fprintf(w, "  classes:   %d (%s)\n", len(s.Classes), strings.Join(s.Classes, ", "))
		}
		if s.VocabSize > 0 {
			fmt.Fprintf(w, "  vocab:     %d\n", s.VocabSize)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func explainStatus(s host.Status) string {
	switch s {
	case host.StatusUnpinned:
		return "no SHA-256 pin; run `prism plugins pin PATH` if you trust this binary"
	case host.StatusMismatch:
		return "the binary changed since it was pinned; re-pin it only if you trust the new binary"
	case host.StatusMissing:
		return "the manifest pins this binary but it is not there"
	case host.StatusNotExecutable:
		return "the file is not executable"
	}
	return string(s)
}

func allowed(lo, hi *float64, choices []string) string {
	switch {
	case len(choices) > 0:
		return strings.Join(choices, "|")
	case lo != nil && hi != nil:
		return fmt.Sprintf("[%g, %g]", *lo, *hi)
	case lo != nil:
		return fmt.Sprintf("≥ %g", *lo)
	case hi != nil:
		return fmt.Sprintf("≤ %g", *hi)
	}
	return "any"
}
