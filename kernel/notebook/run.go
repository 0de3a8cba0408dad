package notebook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prism-lora/prism/kernel/jupyter"
)

// SmallEnv is the environment variable that asks notebooks for their small mode
// (fewer examples and epochs), which CI uses. Notebooks read it with Small.
const SmallEnv = "PRISM_NOTEBOOK_SMALL"

// Small reports whether notebooks should run in their small mode
// (PRISM_NOTEBOOK_SMALL set to a non-empty value other than "0").
func Small() bool {
	v := os.Getenv(SmallEnv)
	return v != "" && v != "0"
}

// RunOptions tune Run.
type RunOptions struct {
	Jupyter jupyter.Jupyter
	Kernel  string // kernel name (default "prism")
	Small   bool   // run in small mode (sets PRISM_NOTEBOOK_SMALL=1 for the cells)
	// InPlace overwrites the notebook with its executed version (refreshing the
	// committed outputs) — only when the check passes; otherwise the executed copy
	// is kept in OutDir for inspection.
	InPlace     bool
	OutDir      string        // where executed copies go (default: a new temporary directory)
	CellTimeout time.Duration // per-cell limit (default 10 min)
	Env         []string      // extra environment for the kernel and cells
	Log         func(format string, args ...any)
}

// Result is the outcome of running one notebook.
type Result struct {
	Notebook string    // the input
	Executed string    // the executed copy (the input itself after a successful in-place run)
	Problems []Problem // failures found in the executed copy
	Elapsed  time.Duration
}

// OK reports whether the notebook ran and its check found nothing.
func (r Result) OK() bool { return len(r.Problems) == 0 }

// Run executes the notebook headless in a fresh kernel (its working directory is
// the notebook's own directory) and checks the executed copy. An error means the
// notebook could not be executed at all (nbconvert failed: timeout, kernel
// death, missing kernel); failures inside cells are returned as Problems.
func Run(ctx context.Context, path string, o RunOptions) (Result, error) {
	res := Result{Notebook: path}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	outDir := o.OutDir
	if outDir == "" {
		d, err := os.MkdirTemp("", "prism-notebooks-")
		if err != nil {
			return res, err
		}
		outDir = d
	}
	executed := filepath.Join(outDir, filepath.Base(path))
	if abs, err := filepath.Abs(path); err == nil && abs == mustAbs(executed) {
		return res, fmt.Errorf("the output directory %s holds the notebook itself; choose another", outDir)
	}
	env := append([]string(nil), o.Env...)
	if o.Small {
		env = append(env, SmallEnv+"=1")
	} else {
		env = append(env, SmallEnv+"=")
	}
	eo := jupyter.ExecuteOptions{
		Kernel:      o.Kernel,
		CellTimeout: o.CellTimeout,
		Output:      executed,
		AllowErrors: true,
		Env:         env,
	}
	logf("executing %s: %s %s", path, o.Jupyter.Path, strings.Join(eo.Args(path), " "))
	start := time.Now()
	err := o.Jupyter.Execute(ctx, path, eo)
	res.Elapsed = time.Since(start)
	if err != nil {
		return res, err
	}
	res.Executed = executed
	ps, err := CheckFile(executed)
	if err != nil {
		return res, err
	}
	res.Problems = ps
	if o.InPlace && res.OK() {
		if err := replaceFile(executed, path); err != nil {
			return res, err
		}
		res.Executed = path
	}
	return res, nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// replaceFile copies src over dst, keeping dst's permissions.
func replaceFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(dst); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
