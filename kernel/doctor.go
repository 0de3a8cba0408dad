package kernel

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"go/version"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prism-lora/prism/kernel/jupyter"
	"github.com/prism-lora/prism/kernel/notebook"
	"github.com/prism-lora/prism/kernel/toolchain"
)

// MinGo is the oldest Go the repository builds with (go.mod's go directive).
const MinGo = "go1.26.0"

// Status of one doctor check.
type Status int

const (
	Passed  Status = iota
	Failed         // something is missing or wrong
	Skipped        // not checked because a check it needs failed
)

func (s Status) String() string {
	switch s {
	case Passed:
		return "ok"
	case Failed:
		return "FAIL"
	default:
		return "skip"
	}
}

// Check is one line of the doctor's checklist.
type Check struct {
	Name   string
	Status Status
	Detail string // what was found, or what is wrong
	Fix    string // the command that fixes a failure
}

// Report is the doctor's checklist.
type Report struct {
	Checks []Check
}

// OK reports whether every check passed.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if c.Status != Passed {
			return false
		}
	}
	return true
}

// Failed returns the failed checks.
func (r Report) Failed() []Check {
	var fs []Check
	for _, c := range r.Checks {
		if c.Status == Failed {
			fs = append(fs, c)
		}
	}
	return fs
}

// Write prints the checklist, one check per line, each failure followed by
// the command that fixes it.
func (r Report) Write(w io.Writer) {
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%-6s %s", "["+c.Status.String()+"]", c.Name)
		if c.Detail != "" {
			fmt.Fprintf(w, ": %s", strings.ReplaceAll(c.Detail, "\n", "\n       "))
		}
		fmt.Fprintln(w)
		if c.Status == Failed && c.Fix != "" {
			fmt.Fprintf(w, "       fix: %s\n", c.Fix)
		}
	}
}

// DoctorOptions tune Doctor.
type DoctorOptions struct {
	Repo     string        // checkout the tools pins are read from (default: the kernel's go.work, else found from the working directory)
	ToolsDir string        // tools cache root (default toolchain.DefaultRoot())
	Timeout  time.Duration // limit for the notebook execution checks (default 3 min)
	Kernel   string        // kernelspec name (default Name)
}

// Doctor checks every piece the prism kernel needs — the Go toolchain, Jupyter,
// the kernelspec and the paths it names, GoNB, goimports and gopls at the
// pinned versions, whether the tools match the checkout's pins, that a cell
// runs, and that a notebook importing a prism package compiles — and returns a
// checklist saying what is missing and how to fix it.
func Doctor(ctx context.Context, o DoctorOptions) Report {
	d := doctor{o: o}
	if d.o.Kernel == "" {
		d.o.Kernel = Name
	}
	if d.o.Timeout <= 0 {
		d.o.Timeout = 3 * time.Minute
	}
	d.run(ctx)
	return d.r
}

type doctor struct {
	o DoctorOptions
	r Report
}

func (d *doctor) pass(name, detail string) {
	d.r.Checks = append(d.r.Checks, Check{Name: name, Status: Passed, Detail: detail})
}

func (d *doctor) fail(name, detail, fix string) {
	d.r.Checks = append(d.r.Checks, Check{Name: name, Status: Failed, Detail: detail, Fix: fix})
}

func (d *doctor) skip(name, why string) {
	d.r.Checks = append(d.r.Checks, Check{Name: name, Status: Skipped, Detail: why})
}

const installFix = "prism kernel install   (or: make kernel)"

func (d *doctor) run(ctx context.Context) {
	// Go.
	g, goErr := toolchain.FindGo(ctx)
	switch {
	case goErr != nil:
		d.fail("Go toolchain", goErr.Error(), "install Go "+strings.TrimPrefix(MinGo, "go")+" or newer and put its bin directory on PATH")
	case version.Compare(g.Version, MinGo) < 0:
		d.fail("Go toolchain", fmt.Sprintf("%s at %s is older than %s", g.Version, g.Path, MinGo), "install Go "+strings.TrimPrefix(MinGo, "go")+" or newer and put its bin directory on PATH")
		goErr = errors.New("old Go")
	default:
		d.pass("Go toolchain", fmt.Sprintf("%s (%s)", g.Version, g.Path))
	}

	// Jupyter.
	setupFix := "scripts/setup.sh jupyter"
	if os.Geteuid() != 0 {
		setupFix = "sudo " + setupFix
	}
	jup, jupErr := usableJupyter(ctx)
	if jupErr != nil {
		d.fail("Jupyter", jupErr.Error(), setupFix)
	} else {
		v, _ := jup.SubcommandVersion(ctx, "nbconvert")
		d.pass("Jupyter", fmt.Sprintf("%s (nbconvert %s)", jup.Path, v))
	}

	// Kernelspec.
	specName := fmt.Sprintf("kernelspec %q", d.o.Kernel)
	var spec jupyter.KernelSpec
	specOK := false
	if jupErr != nil {
		d.skip(specName, "needs Jupyter")
	} else if specs, err := jup.KernelSpecs(ctx); err != nil {
		d.fail(specName, err.Error(), setupFix)
	} else if s, ok := specs[d.o.Kernel]; !ok {
		d.fail(specName, "not registered with Jupyter (jupyter kernelspec list does not show it)", installFix)
	} else {
		spec, specOK = s, true
		d.pass(specName, s.ResourceDir)
	}

	// Paths the kernelspec names, and the tools.
	pathsOK := false
	var kernelPATH []string
	if !specOK {
		d.skip("kernelspec paths", "needs the kernelspec")
	} else {
		kernelPATH = specPATH(spec.Env)
		var problems []string
		if len(spec.Argv) == 0 || !isExecutableFile(spec.Argv[0]) {
			problems = append(problems, fmt.Sprintf("the kernel program %q does not exist or is not executable", first(spec.Argv)))
		}
		work := GoWork(spec.Argv)
		switch {
		case work == "":
			problems = append(problems, "argv has no --go_work=<prism checkout>, so notebooks cannot import prism's packages")
		case !isPrismModule(filepath.Join(work, "go.mod")):
			problems = append(problems, fmt.Sprintf("--go_work=%s is not a prism checkout", work))
		}
		if !hasRawError(spec.Argv) {
			problems = append(problems, "argv lacks --raw_error, so compile errors would not be reported as errors")
		}
		if len(kernelPATH) == 0 {
			problems = append(problems, "env has no PATH putting the kernel tools first")
		}
		for _, dir := range kernelPATH {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				problems = append(problems, fmt.Sprintf("PATH directory %s does not exist", dir))
			}
		}
		if len(problems) > 0 {
			d.fail("kernelspec paths", strings.Join(problems, "\n"), installFix)
		} else {
			pathsOK = true
			d.pass("kernelspec paths", fmt.Sprintf("kernel %s, go.work uses %s", spec.Argv[0], work))
		}
	}
	if !pathsOK {
		for _, n := range []string{"GoNB", "goimports", "gopls", "go in the kernel's PATH"} {
			d.skip(n, "needs the kernelspec paths")
		}
	} else {
		d.checkBinary("GoNB", spec.Argv[0], "github.com/janpfeifer/gonb", toolchain.GoNBVersion)
		if p, err := lookIn(kernelPATH, toolchain.GoImports); err != nil {
			d.fail("goimports", err.Error(), installFix)
		} else {
			d.checkBinary("goimports", p, "golang.org/x/tools", toolchain.GoImportsToolsVersion)
		}
		if p, err := lookIn(kernelPATH, toolchain.GoPLS); err != nil {
			d.fail("gopls", err.Error(), installFix)
		} else {
			d.checkBinary("gopls", p, "golang.org/x/tools/gopls", toolchain.GoPLSVersion)
		}
		if p, err := lookIn(kernelPATH, "go"); err != nil {
			d.fail("go in the kernel's PATH", err.Error(), installFix)
		} else {
			d.pass("go in the kernel's PATH", p)
		}
	}

	// Tools match the checkout's pins.
	repo := d.o.Repo
	if repo == "" && specOK {
		repo = GoWork(spec.Argv)
	}
	if repo == "" {
		if wd, err := os.Getwd(); err == nil {
			repo, _ = FindRepoRoot(wd)
		}
	}
	switch {
	case !pathsOK:
		d.skip("tools match the pins", "needs the kernelspec paths")
	case goErr != nil:
		d.skip("tools match the pins", "needs the Go toolchain")
	case repo == "":
		d.skip("tools match the pins", "no prism checkout found (pass --repo)")
	default:
		want, ok, err := toolchain.Lookup(ctx, repo, toolchain.Options{Root: d.o.ToolsDir})
		switch {
		case err != nil:
			d.fail("tools match the pins", err.Error(), installFix)
		case toolsKeyOf(spec.Argv[0]) != want.Key:
			detail := fmt.Sprintf("the kernel runs tools from %s, but %s's pins and %s give the key %s", filepath.Dir(spec.Argv[0]), repo, g.Version, want.Key)
			if !ok {
				detail += " (not built yet)"
			}
			d.fail("tools match the pins", detail, installFix)
		default:
			d.pass("tools match the pins", "key "+want.Key)
		}
	}

	// Execution.
	if !pathsOK || jupErr != nil {
		d.skip("one-cell execution", "needs Jupyter and the kernelspec")
		d.skip("prism package import", "needs Jupyter and the kernelspec")
		return
	}
	d.checkExecution(ctx, jup)
}

// checkBinary checks that the program exists and, from its embedded build
// information, that it was built from module mod at version want ("" = any).
func (d *doctor) checkBinary(name, path, mod, want string) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		d.fail(name, fmt.Sprintf("%s: %v", path, err), installFix)
		return
	}
	got := ""
	if info.Main.Path == mod {
		got = info.Main.Version
	}
	for _, dep := range info.Deps {
		if dep.Path == mod {
			got = dep.Version
		}
	}
	if got == "" {
		d.fail(name, fmt.Sprintf("%s was not built from %s", path, mod), installFix)
		return
	}
	if want != "" && got != want {
		d.fail(name, fmt.Sprintf("%s is %s %s, expected %s", path, mod, got, want), installFix)
		return
	}
	d.pass(name, fmt.Sprintf("%s %s (%s)", mod, got, path))
}

// Markers the doctor's notebook prints.
const (
	doctorCellMarker   = "prism-doctor: cell ran"
	doctorImportMarker = "prism-doctor: imported prism, in notebook: true"
)

// checkExecution runs a two-cell notebook: one plain cell, one importing a
// prism package.
func (d *doctor) checkExecution(ctx context.Context, jup jupyter.Jupyter) {
	nb, err := notebook.New(
		notebook.Cell{Source: "%%\nfmt.Println(\"" + doctorCellMarker + "\")\n"},
		notebook.Cell{Source: "import \"github.com/prism-lora/prism/kernel/display\"\n\n%%\nfmt.Println(\"prism-doctor: imported prism, in notebook:\", display.InNotebook())\n"},
	)
	if err != nil {
		d.fail("one-cell execution", err.Error(), "")
		return
	}
	dir, err := os.MkdirTemp("", "prism-doctor-")
	if err != nil {
		d.fail("one-cell execution", err.Error(), "")
		return
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "doctor.ipynb")
	if err := os.WriteFile(in, nb, 0o644); err != nil {
		d.fail("one-cell execution", err.Error(), "")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	start := time.Now()
	res, err := notebook.Run(ctx, in, notebook.RunOptions{Jupyter: jup, Kernel: d.o.Kernel, OutDir: filepath.Join(dir, "out"), CellTimeout: d.o.Timeout})
	if err != nil {
		d.fail("one-cell execution", fmt.Sprintf("the notebook did not run within %s: %v", d.o.Timeout, err), "prism kernel install, then rerun prism kernel doctor")
		d.skip("prism package import", "needs cell execution")
		return
	}
	b, err := os.ReadFile(res.Executed)
	var texts []string
	if err == nil {
		texts, err = notebook.CellTexts(b)
	}
	if err != nil || len(texts) != 2 {
		d.fail("one-cell execution", fmt.Sprintf("reading the executed notebook: %v", err), "")
		return
	}
	elapsed := time.Since(start).Round(100 * time.Millisecond)
	if strings.Contains(texts[0], doctorCellMarker) {
		d.pass("one-cell execution", fmt.Sprintf("a cell ran (notebook of 2 cells in %s)", elapsed))
	} else {
		d.fail("one-cell execution", "the cell printed "+quoteOutput(texts[0])+", expected "+doctorCellMarker, installFix)
	}
	if strings.Contains(texts[1], doctorImportMarker) {
		d.pass("prism package import", "import \""+ModulePath+"/kernel/display\" compiles and runs")
	} else {
		d.fail("prism package import", "the cell printed "+quoteOutput(texts[1])+", expected "+doctorImportMarker,
			"check that the kernel's --go_work checkout builds (go build ./... there), then "+installFix)
	}
}

func quoteOutput(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "nothing"
	}
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// toolsKeyOf returns the cache key of a tool path <root>/<key>/bin/<program>.
func toolsKeyOf(program string) string {
	return filepath.Base(filepath.Dir(filepath.Dir(program)))
}

func first(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}

func isExecutableFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
