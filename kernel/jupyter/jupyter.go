// Package jupyter drives the Jupyter command-line tools prism relies on: finding
// them, listing and installing kernelspecs, and executing a notebook headless
// with nbconvert. It runs the real `jupyter` program; nothing is reimplemented.
package jupyter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SetupCommand is the command that installs the Debian Jupyter pieces prism uses.
const SetupCommand = "scripts/setup.sh jupyter"

// Jupyter is one `jupyter` program.
type Jupyter struct {
	Path string
}

// Find locates the jupyter command: $PRISM_JUPYTER, else Debian's /usr/bin/jupyter
// (what `scripts/setup.sh jupyter` installs), else `jupyter` on PATH.
func Find() (Jupyter, error) {
	if p := os.Getenv("PRISM_JUPYTER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return Jupyter{}, fmt.Errorf("PRISM_JUPYTER=%s: %w", p, err)
		}
		return Jupyter{Path: p}, nil
	}
	if _, err := os.Stat("/usr/bin/jupyter"); err == nil {
		return Jupyter{Path: "/usr/bin/jupyter"}, nil
	}
	p, err := exec.LookPath("jupyter")
	if err != nil {
		return Jupyter{}, fmt.Errorf("jupyter was not found (neither /usr/bin/jupyter nor on PATH); install it with: %s", SetupCommand)
	}
	return Jupyter{Path: p}, nil
}

// quietEnv silences a debugger warning Debian's Python prints on every start.
func quietEnv(env []string) []string {
	return append(env, "PYDEVD_DISABLE_FILE_VALIDATION=1")
}

// run runs `jupyter args...` and returns its stdout; the error carries stderr.
func (j Jupyter) run(ctx context.Context, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, j.Path, args...)
	cmd.Env = quietEnv(os.Environ())
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		return so.Bytes(), se.Bytes(), fmt.Errorf("%s %s: %w\n%s", j.Path, strings.Join(args, " "), err, strings.TrimSpace(se.String()))
	}
	return so.Bytes(), se.Bytes(), nil
}

// SubcommandVersion runs `jupyter NAME --version` (e.g. "nbconvert",
// "kernelspec") and returns the version it prints.
func (j Jupyter) SubcommandVersion(ctx context.Context, name string) (string, error) {
	out, _, err := j.run(ctx, name, "--version")
	if err != nil {
		return "", fmt.Errorf("jupyter %s is not usable (install it with: %s): %w", name, SetupCommand, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// KernelSpec is one entry of `jupyter kernelspec list --json`.
type KernelSpec struct {
	Name          string
	ResourceDir   string            `json:"resource_dir"`
	Argv          []string          `json:"argv"`
	Env           map[string]string `json:"env"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode"`
	Metadata      map[string]any    `json:"metadata"`
}

// KernelSpecs lists the kernelspecs Jupyter finds (it honours JUPYTER_DATA_DIR
// and JUPYTER_PATH), by name.
func (j Jupyter) KernelSpecs(ctx context.Context) (map[string]KernelSpec, error) {
	out, _, err := j.run(ctx, "kernelspec", "list", "--json")
	if err != nil {
		return nil, err
	}
	var list struct {
		KernelSpecs map[string]struct {
			ResourceDir string     `json:"resource_dir"`
			Spec        KernelSpec `json:"spec"`
		} `json:"kernelspecs"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("parsing `jupyter kernelspec list --json`: %w", err)
	}
	specs := make(map[string]KernelSpec, len(list.KernelSpecs))
	for name, e := range list.KernelSpecs {
		s := e.Spec
		s.Name = name
		s.ResourceDir = e.ResourceDir
		specs[name] = s
	}
	return specs, nil
}

// Location says where a kernelspec goes, like `jupyter kernelspec install`'s
// flags: the user's data directory (JUPYTER_DATA_DIR if set), PREFIX/share/jupyter,
// or the Python environment's sys.prefix. The zero value means the user's.
type Location struct {
	Prefix    string
	SysPrefix bool
}

// Flags returns the `jupyter kernelspec install` flags for the location.
func (l Location) Flags() []string {
	switch {
	case l.Prefix != "":
		return []string{"--prefix", l.Prefix}
	case l.SysPrefix:
		return []string{"--sys-prefix"}
	default:
		return []string{"--user"}
	}
}

var installedRE = regexp.MustCompile(`Installed kernelspec (\S+) in (.+)`)

// InstallKernelSpec copies the directory srcDir (which holds kernel.json) into
// Jupyter's kernels directory as name, replacing an earlier one, and returns the
// directory it was installed to.
func (j Jupyter) InstallKernelSpec(ctx context.Context, srcDir, name string, loc Location) (string, error) {
	args := append([]string{"kernelspec", "install", "--replace", "--name", name}, loc.Flags()...)
	args = append(args, srcDir)
	out, errOut, err := j.run(ctx, args...)
	if err != nil {
		return "", err
	}
	m := installedRE.FindSubmatch(append(errOut, out...))
	if m == nil {
		return "", fmt.Errorf("jupyter kernelspec install did not say where it installed %q:\n%s%s", name, errOut, out)
	}
	return strings.TrimSpace(string(m[2])), nil
}

// ExecuteOptions tune Execute.
type ExecuteOptions struct {
	Kernel         string        // kernel name (default "prism")
	CellTimeout    time.Duration // per-cell limit (default 10 min)
	StartupTimeout time.Duration // kernel start limit (default 2 min)
	// Output is where the executed notebook is written (a new file); empty with
	// InPlace overwrites the input.
	Output  string
	InPlace bool
	// AllowErrors keeps executing after a cell fails, so every cell's outputs
	// are kept for the checker (nbconvert otherwise stops and writes nothing).
	AllowErrors bool
	Env         []string  // extra environment for nbconvert and so the kernel and the cells
	Log         io.Writer // nbconvert's messages (default: kept only for errors)
}

// Args returns the exact `jupyter` arguments Execute runs for notebook nb.
func (o ExecuteOptions) Args(nb string) []string {
	kernel := o.Kernel
	if kernel == "" {
		kernel = "prism"
	}
	cell := o.CellTimeout
	if cell <= 0 {
		cell = 10 * time.Minute
	}
	startup := o.StartupTimeout
	if startup <= 0 {
		startup = 2 * time.Minute
	}
	args := []string{"nbconvert", "--to", "notebook", "--execute",
		"--ExecutePreprocessor.kernel_name=" + kernel,
		"--ExecutePreprocessor.timeout=" + strconv.Itoa(int(cell.Seconds())),
		"--ExecutePreprocessor.startup_timeout=" + strconv.Itoa(int(startup.Seconds())),
	}
	if o.AllowErrors {
		args = append(args, "--allow-errors")
	}
	if o.InPlace {
		args = append(args, "--inplace")
	} else {
		args = append(args, "--output-dir", filepath.Dir(o.Output), "--output", filepath.Base(o.Output))
	}
	return append(args, nb)
}

// Execute runs every cell of the notebook nb in a fresh kernel with
// `jupyter nbconvert --execute` and writes the executed notebook. It fails when
// nbconvert fails (a cell timing out, the kernel dying, or — without
// AllowErrors — a cell error), but NOT when a GoNB cell panics or exits non-zero:
// nbconvert does not see those; check the executed notebook's outputs.
func (j Jupyter) Execute(ctx context.Context, nb string, o ExecuteOptions) error {
	if !o.InPlace && o.Output == "" {
		return errors.New("jupyter: Execute needs an Output path or InPlace")
	}
	if !o.InPlace {
		if err := os.MkdirAll(filepath.Dir(o.Output), 0o755); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, j.Path, o.Args(nb)...)
	cmd.Env = append(quietEnv(os.Environ()), o.Env...)
	var stderr bytes.Buffer
	if o.Log != nil {
		cmd.Stdout = o.Log
		cmd.Stderr = io.MultiWriter(o.Log, &stderr)
	} else {
		cmd.Stderr = &stderr
	}
	// On cancellation nbconvert's kernel (gonb), gopls and a running cell must
	// not outlive it: interrupt nbconvert so it shuts its kernel down, and kill
	// the whole process tree if that takes longer than stopGrace.
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return stopTree(cmd, stopGrace) }
	cmd.WaitDelay = stopGrace + 5*time.Second // then Wait stops waiting for left-over pipe holders
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("executing %s: %w", nb, ctx.Err())
		}
		return fmt.Errorf("executing %s (%s %s): %w\n%s", nb, j.Path, strings.Join(o.Args(nb), " "), err, lastLines(stderr.String(), 40))
	}
	return nil
}

// stopGrace is how long a cancelled nbconvert gets to shut its kernel down
// (jupyter_client itself waits up to 5 s for a kernel to exit).
const stopGrace = 8 * time.Second

// lastLines keeps the tail of a long log.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
