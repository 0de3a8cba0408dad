package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/prism-lora/prism/kernel/jupyter"
	"github.com/prism-lora/prism/kernel/toolchain"
)

// InstallOptions tune Install.
type InstallOptions struct {
	Repo     string           // repository root (default: found from the working directory)
	Location jupyter.Location // where the kernelspec goes (default: the user's data directory)
	ToolsDir string           // tools cache root (default toolchain.DefaultRoot())
	// SetupJupyter allows running `scripts/setup.sh jupyter` when Jupyter is
	// missing and the process runs as root (otherwise Install only says how).
	SetupJupyter bool
	Log          io.Writer // progress messages (default: discard)
}

// InstallResult says what Install did.
type InstallResult struct {
	Repo       string
	Tools      toolchain.Tools
	SpecDir    string // where Jupyter installed the kernelspec
	Spec       Spec
	Unchanged  bool // the installed kernel.json was already identical
	Registered bool // `jupyter kernelspec list` finds the kernel (false for a --prefix outside Jupyter's path)
}

// Install builds (or reuses) the kernel tools, makes sure Jupyter is there, and
// registers the "prism" kernelspec. Running it again is cheap and changes
// nothing when nothing changed.
func Install(ctx context.Context, o InstallOptions) (InstallResult, error) {
	var res InstallResult
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	repo := o.Repo
	if repo == "" {
		wd, err := os.Getwd()
		if err != nil {
			return res, err
		}
		if repo, err = FindRepoRoot(wd); err != nil {
			return res, err
		}
	} else {
		abs, err := filepath.Abs(repo)
		if err != nil {
			return res, err
		}
		if !isPrismModule(filepath.Join(abs, "go.mod")) {
			return res, fmt.Errorf("%s is not a prism checkout (its go.mod does not declare %s)", abs, ModulePath)
		}
		repo = abs
	}
	res.Repo = repo

	// 1. Jupyter.
	jup, err := ensureJupyter(ctx, repo, o.SetupJupyter, log)
	if err != nil {
		return res, err
	}

	// 2. Tools.
	fmt.Fprintf(log, "kernel: building or reusing GoNB %s, goimports and gopls %s from %s/kernel/tools\n", toolchain.GoNBVersion, toolchain.GoPLSVersion, repo)
	tools, err := toolchain.Ensure(ctx, repo, toolchain.Options{Root: o.ToolsDir, Log: log})
	if err != nil {
		return res, err
	}
	res.Tools = tools
	if tools.Built {
		fmt.Fprintf(log, "kernel: built the tools into %s\n", tools.Bin)
	} else {
		fmt.Fprintf(log, "kernel: tools already built in %s\n", tools.Bin)
	}

	// 3. Kernelspec.
	spec := NewSpec(repo, tools)
	res.Spec = spec
	data, err := spec.Marshal()
	if err != nil {
		return res, err
	}
	previous := installedSpecBytes(ctx, jup, o.Location)
	src, err := os.MkdirTemp("", "prism-kernelspec-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "kernel.json"), data, 0o644); err != nil {
		return res, err
	}
	dir, err := jup.InstallKernelSpec(ctx, src, Name, o.Location)
	if err != nil {
		return res, err
	}
	res.SpecDir = dir
	res.Unchanged = bytes.Equal(previous, data)
	specs, err := jup.KernelSpecs(ctx)
	if err != nil {
		return res, err
	}
	if s, ok := specs[Name]; ok && sameDir(s.ResourceDir, dir) {
		res.Registered = true
	}
	return res, nil
}

// installedSpecBytes returns the kernel.json currently installed for the
// location, or nil.
func installedSpecBytes(ctx context.Context, jup jupyter.Jupyter, loc jupyter.Location) []byte {
	if loc.Prefix != "" {
		b, _ := os.ReadFile(filepath.Join(loc.Prefix, "share", "jupyter", "kernels", Name, "kernel.json"))
		return b
	}
	specs, err := jup.KernelSpecs(ctx)
	if err != nil {
		return nil
	}
	s, ok := specs[Name]
	if !ok {
		return nil
	}
	b, _ := os.ReadFile(filepath.Join(s.ResourceDir, "kernel.json"))
	return b
}

// ensureJupyter finds a working jupyter with kernelspec and nbconvert; when
// missing it runs the setup script if allowed and root, or explains the fix.
func ensureJupyter(ctx context.Context, repo string, allowSetup bool, log io.Writer) (jupyter.Jupyter, error) {
	jup, err := usableJupyter(ctx)
	if err == nil {
		return jup, nil
	}
	setup := filepath.Join(repo, "scripts", "setup.sh")
	if !allowSetup {
		return jup, fmt.Errorf("%w\ninstall Jupyter with: %s jupyter", err, setup)
	}
	if os.Geteuid() != 0 {
		return jup, fmt.Errorf("%w\nJupyter is missing and installing it needs root; run: sudo %s jupyter\nthen rerun this command", err, setup)
	}
	fmt.Fprintf(log, "kernel: Jupyter is missing (%v); running %s jupyter\n", err, setup)
	cmd := exec.CommandContext(ctx, setup, "jupyter")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return jup, fmt.Errorf("running %s jupyter: %w", setup, err)
	}
	return usableJupyter(ctx)
}

// usableJupyter finds jupyter and checks its kernelspec and nbconvert commands.
func usableJupyter(ctx context.Context) (jupyter.Jupyter, error) {
	jup, err := jupyter.Find()
	if err != nil {
		return jup, err
	}
	var errs []error
	for _, sub := range []string{"kernelspec", "nbconvert"} {
		if _, err := jup.SubcommandVersion(ctx, sub); err != nil {
			errs = append(errs, err)
		}
	}
	return jup, errors.Join(errs...)
}

func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ra == rb
}
