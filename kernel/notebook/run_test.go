package notebook_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-lora/prism/kernel/kerneltest"
	"github.com/prism-lora/prism/kernel/notebook"
)

// TestCheckerOnRealExecutions executes notebooks in the real prism kernel with
// nbconvert and checks them: a clean one passes, and a panicking cell, a cell
// calling os.Exit(3) and a cell that does not compile each fail — although
// nbconvert itself succeeds for all of them.
func TestCheckerOnRealExecutions(t *testing.T) {
	k := kerneltest.Install(t)
	dir := t.TempDir()
	cases := []struct {
		name  string
		cells []notebook.Cell
		kind  string // "" = must pass
		cell  int
		want  []string // texts that must appear in the executed cells' outputs, by cell
	}{
		{
			name: "clean",
			cells: []notebook.Cell{
				{Markdown: true, Source: "# A clean notebook"},
				{Source: "func double(x int) int { return 2 * x }"},
				{Source: "%%\nfmt.Println(\"double:\", double(21))\nfmt.Fprintln(os.Stderr, \"a note on stderr is not a failure\")"},
				{Source: "import \"github.com/prism-lora/prism/kernel/display\"\n\n%%\ndisplay.Table{Columns: []string{\"n\"}, Rows: [][]any{{7}}}.Show()"},
			},
			want: []string{"", "", "double: 42", "<table"},
		},
		{name: "panic", cells: []notebook.Cell{{Source: "%%\nfmt.Println(\"fine\")"}, {Source: "%%\nvar m map[string]int\nm[\"x\"] = 1"}}, kind: "panic", cell: 1},
		{name: "exit3", cells: []notebook.Cell{{Source: "%%\nfmt.Println(\"leaving\")\nos.Exit(3)"}}, kind: "exit", cell: 0},
		{name: "compile", cells: []notebook.Cell{{Source: "%%\nvar x int = \"not an int\"\nfmt.Println(x)"}}, kind: "error", cell: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nb, err := notebook.New(c.cells...)
			if err != nil {
				t.Fatal(err)
			}
			path := kerneltest.WriteFile(t, dir, c.name+".ipynb", nb)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			res, err := notebook.Run(ctx, path, notebook.RunOptions{Jupyter: k.Jupyter, OutDir: filepath.Join(dir, "out"), CellTimeout: 2 * time.Minute})
			if err != nil {
				t.Fatalf("nbconvert failed (it should succeed even for failing cells, with --allow-errors): %v", err)
			}
			b, err := os.ReadFile(res.Executed)
			if err != nil {
				t.Fatal(err)
			}
			texts, err := notebook.CellTexts(b)
			if err != nil {
				t.Fatal(err)
			}
			if c.kind == "" {
				if !res.OK() {
					t.Fatalf("clean notebook flagged: %v", res.Problems)
				}
				for i, w := range c.want {
					if !strings.Contains(texts[i], w) {
						t.Errorf("cell %d output %q lacks %q", i, texts[i], w)
					}
				}
				return
			}
			if res.OK() {
				t.Fatalf("the check passed a notebook whose cell %d fails; outputs: %q", c.cell, texts)
			}
			kinds := []string{}
			for _, p := range res.Problems {
				if p.Cell != c.cell {
					t.Errorf("problem in cell %d, but only cell %d fails: %v", p.Cell, c.cell, p)
				}
				kinds = append(kinds, p.Kind)
			}
			if !slices.Contains(kinds, c.kind) {
				t.Errorf("problems %v lack kind %q", res.Problems, c.kind)
			}
			t.Logf("%s: %v", c.name, res.Problems)
		})
	}
}

// TestNotebooks executes every notebook under notebooks/ in small mode (as CI
// does) and fails on any error, panic or non-zero exit in their outputs.
func TestNotebooks(t *testing.T) {
	k := kerneltest.Install(t)
	paths, err := filepath.Glob(filepath.Join(k.Repo, "notebooks", "*.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no notebooks under notebooks/")
	}
	out := t.TempDir()
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			res, err := notebook.Run(ctx, p, notebook.RunOptions{Jupyter: k.Jupyter, Small: true, OutDir: out})
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range res.Problems {
				t.Errorf("%s", pr)
			}
			t.Logf("%s ran in %s", filepath.Base(p), res.Elapsed.Round(100*time.Millisecond))
			if filepath.Base(p) == "00-smoke.ipynb" {
				checkSmoke(t, res.Executed)
			}
		})
	}
}

// checkSmoke asserts what the smoke notebook must show.
func checkSmoke(t *testing.T, executed string) {
	b, err := os.ReadFile(executed)
	if err != nil {
		t.Fatal(err)
	}
	texts, err := notebook.CellTexts(b)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		"k = 64 singular values, σ₀ = 7.067", // core/lowrank's SVD, through the workspace
		"<svg",                               // spectrum and curves figures
		"window [28, 36) of k=64",            // the mid window's title
		`<table class="prism-table">`,        // results table
		"max |W − (Base + scale·B·A)|",       // the identity column (escaped HTML would differ)
		`<td style="text-align:left">milora</td><td style="text-align:right">56</td>`, // milora starts at k−r
		`<progress max="60" value="60"`,                                               // final state of the progress bar (small mode: 60 steps)
		"after 60 steps",                                                              // small mode reached the cells
	} {
		if !strings.Contains(all, want) {
			t.Errorf("smoke notebook output lacks %q", want)
		}
	}
	if n := strings.Count(all, "<svg"); n != 2 {
		t.Errorf("smoke notebook shows %d SVG figures, want 2 (spectrum, curves): live updates must replace, not append", n)
	}
}
