package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/datasets/catalog"
)

func init() { dataSubcommands = append(dataSubcommands, newDataListCmd) }

// dataListOptions are the inputs of `prism data list`.
type dataListOptions struct {
	Dir    string    // data cache ("" = $PRISM_DATA_DIR or ~/.cache/prism/data)
	Rehash bool      // hash every file again
	JSON   bool      // one JSON array instead of a table
	Out    io.Writer // where the table goes
}

func newDataListCmd() *cobra.Command {
	var o dataListOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show every dataset: present or not, where, checksum status, sizes",
		Long: `List prints one row per dataset of the catalog:
  NAME      the name to give 'prism data fetch' and experiment specs
  STATUS    present (every file found and matching its pinned SHA-256) or missing
  CHECKSUM  ok, ok* (remembered from an earlier hash of the same file: same path,
            size and modification time; --rehash hashes again), MISMATCH, or -
  FILES     total size of the dataset's files
  SPLITS    examples per split
  SOURCE    the registry package it comes from
  WHERE     the folder holding the files, or the command that installs them

Nothing is fetched or written except the remembered checksums.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			return runDataList(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "data cache folder (default $PRISM_DATA_DIR, else ~/.cache/prism/data)")
	f.BoolVar(&o.Rehash, "rehash", false, "hash every file again instead of trusting remembered checksums")
	f.BoolVar(&o.JSON, "json", false, "print a JSON array (name, present, location, dir, checksum, bytes, splits, source, problem)")
	return cmd
}

// dataListRow is one dataset in `prism data list --json`.
type dataListRow struct {
	Name     string      `json:"name"`
	Present  bool        `json:"present"`
	Location string      `json:"location,omitempty"`
	Dir      string      `json:"dir"`
	Checksum string      `json:"checksum"`
	Bytes    int64       `json:"bytes"`
	Splits   []splitSize `json:"splits"`
	Source   string      `json:"source"`
	Problem  string      `json:"problem,omitempty"`
	Install  string      `json:"install,omitempty"`
}

type splitSize struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// runDataList prints the state of every dataset of the catalog.
func runDataList(ctx context.Context, o dataListOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	store, err := catalog.NewStore(o.Dir)
	if err != nil {
		return err
	}
	store.Rehash = o.Rehash
	var rows []dataListRow
	for _, e := range catalog.Entries() {
		st, err := store.Status(ctx, e.Name)
		if err != nil {
			return err
		}
		r := dataListRow{Name: e.Name, Present: st.Present, Dir: st.Dir, Bytes: e.TotalSize(),
			Source: e.Source.String(), Problem: st.Problem}
		for _, sp := range e.Spec().Splits {
			r.Splits = append(r.Splits, splitSize{sp.Name, sp.Size})
		}
		switch {
		case st.Present:
			r.Location = st.Location
			r.Checksum = "ok"
			for _, f := range st.Files {
				if f.Remembered {
					r.Checksum = "ok*"
				}
			}
		case st.Problem == "not installed":
			r.Checksum = "-"
			r.Install = e.FetchCommand()
		default:
			r.Checksum = "MISMATCH"
			r.Install = e.FetchCommand()
		}
		rows = append(rows, r)
	}
	if o.JSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tCHECKSUM\tFILES\tSPLITS\tSOURCE\tWHERE")
	var problems []string
	for _, r := range rows {
		status, where := "missing", "run: "+r.Install
		if r.Present {
			status, where = "present", r.Dir+" ("+r.Location+")"
		}
		var splits []string
		for _, sp := range r.Splits {
			splits = append(splits, fmt.Sprintf("%s %d", sp.Name, sp.Size))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, status, r.Checksum, humanBytes(r.Bytes),
			strings.Join(splits, ", "), r.Source, where)
		if r.Problem != "" && r.Problem != "not installed" {
			problems = append(problems, fmt.Sprintf("%s: %s", r.Name, r.Problem))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(o.Out, p)
	}
	fmt.Fprintf(o.Out, "data cache: %s (set $%s to move it)\n", store.Dir, catalog.EnvDataDir)
	return nil
}
