// Package toolchain builds the programs prism's Jupyter kernel runs — GoNB (the
// Go kernel), goimports and gopls — from the tools modules pinned in the
// repository (kernel/tools/gonb and kernel/tools/gopls), and caches the binaries
// under a directory keyed by those modules' contents and the Go version, so a
// second build with the same pins is instant.
//
// The two modules are separate because gopls needs its own golang.org/x/tools
// version; GoNB cannot be installed with `go install …@version` here (the module
// proxy refuses its version list), hence modules with tools.go files.
package toolchain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Module is one pinned tools module: its directory under the repository root and
// the packages to install from it.
type Module struct {
	Dir      string   // relative to the repository root, slash-separated
	Packages []string // import paths of the main packages
}

// Modules are the pinned tools modules, in build order.
var Modules = []Module{
	{Dir: "kernel/tools/gonb", Packages: []string{"github.com/janpfeifer/gonb", "golang.org/x/tools/cmd/goimports"}},
	{Dir: "kernel/tools/gopls", Packages: []string{"golang.org/x/tools/gopls"}},
}

// Program names of the built tools.
const (
	GoNB      = "gonb"
	GoImports = "goimports"
	GoPLS     = "gopls"
)

// Versions the tools modules pin (checked by `prism kernel doctor`).
const (
	GoNBVersion  = "v0.11.3"
	GoPLSVersion = "v0.23.0"
	// GoImportsToolsVersion is the golang.org/x/tools version goimports is built from.
	GoImportsToolsVersion = "v0.52.0"
)

// Go describes the Go toolchain used to build the tools and, later, the cells.
type Go struct {
	Path     string // absolute path of the go command
	Version  string // e.g. "go1.26.8"
	GOROOT   string
	Platform string // GOOS/GOARCH, e.g. "linux/amd64"
}

// Bin returns the directory that holds the go command (GOROOT/bin).
func (g Go) Bin() string { return filepath.Dir(g.Path) }

// FindGo locates the go command: $PRISM_GO, else `go` on PATH. It asks the
// command for its version and GOROOT.
func FindGo(ctx context.Context) (Go, error) {
	path := os.Getenv("PRISM_GO")
	if path == "" {
		p, err := exec.LookPath("go")
		if err != nil {
			return Go{}, fmt.Errorf("the Go toolchain was not found on PATH (install Go 1.26 or newer, or set PRISM_GO to the go command): %w", err)
		}
		path = p
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Go{}, err
	}
	out, err := exec.CommandContext(ctx, abs, "env", "GOVERSION", "GOROOT", "GOOS", "GOARCH").Output()
	if err != nil {
		return Go{}, fmt.Errorf("running %s env GOVERSION GOROOT GOOS GOARCH: %w", abs, exitDetail(err))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	if len(lines) != 4 || slices.Contains(lines, "") {
		return Go{}, fmt.Errorf("%s env GOVERSION GOROOT GOOS GOARCH printed %q, expected four lines", abs, out)
	}
	goroot := lines[1]
	// Prefer the go command inside GOROOT: it is what PATH will hold in the kernel.
	if inRoot := filepath.Join(goroot, "bin", "go"); isExecutable(inRoot) {
		abs = inRoot
	}
	return Go{Path: abs, Version: lines[0], GOROOT: goroot, Platform: lines[2] + "/" + lines[3]}, nil
}

// Tools is a built, cached set of tool binaries.
type Tools struct {
	Key   string // content key of the pins and the Go version
	Dir   string // the cache entry, <root>/<key>
	Bin   string // Dir/bin: gonb, goimports, gopls
	Go    Go
	Built bool // whether this call built them (false: found in the cache)
}

// Path returns the absolute path of one of the programs in Bin.
func (t Tools) Path(program string) string { return filepath.Join(t.Bin, program) }

// DefaultRoot is the tools cache: $PRISM_TOOLS_DIR, else <user cache>/prism/tools.
func DefaultRoot() (string, error) {
	if d := os.Getenv("PRISM_TOOLS_DIR"); d != "" {
		return filepath.Abs(d)
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory for the kernel tools (set PRISM_TOOLS_DIR): %w", err)
	}
	return filepath.Join(c, "prism", "tools"), nil
}

// Key hashes everything that determines the binaries: each tools module's
// go.mod, go.sum and tools.go, and the Go version and platform. It returns 16
// hex digits.
func Key(repoRoot string, g Go) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "prism kernel tools v1\n%s %s\n", g.Version, g.Platform)
	for _, m := range Modules {
		for _, name := range []string{"go.mod", "go.sum", "tools.go"} {
			p := filepath.Join(repoRoot, filepath.FromSlash(m.Dir), name)
			b, err := os.ReadFile(p)
			if err != nil {
				return "", fmt.Errorf("reading the pinned tools module file %s: %w", p, err)
			}
			fmt.Fprintf(h, "%s/%s %d\n", m.Dir, name, len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Options tune Ensure.
type Options struct {
	Root string    // cache root (default DefaultRoot())
	Log  io.Writer // build progress and the go commands run (default: discard)
}

// Lookup returns the cached tools for these pins without building; ok is false
// when they are not (completely) built yet.
func Lookup(ctx context.Context, repoRoot string, o Options) (t Tools, ok bool, err error) {
	t, err = describe(ctx, repoRoot, o)
	if err != nil {
		return t, false, err
	}
	return t, complete(t.Bin), nil
}

// Ensure returns the tools for the repository's pins, building them into the
// cache first if needed. Concurrent callers (other processes too) wait for one
// build instead of racing.
func Ensure(ctx context.Context, repoRoot string, o Options) (Tools, error) {
	t, err := describe(ctx, repoRoot, o)
	if err != nil {
		return t, err
	}
	if complete(t.Bin) {
		return t, nil
	}
	if err := os.MkdirAll(filepath.Dir(t.Dir), 0o755); err != nil {
		return t, fmt.Errorf("creating the tools cache %s: %w", filepath.Dir(t.Dir), err)
	}
	unlock, err := lockFile(t.Dir + ".lock")
	if err != nil {
		return t, err
	}
	defer unlock()
	if complete(t.Bin) { // built by another process while we waited
		return t, nil
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	tmp, err := os.MkdirTemp(filepath.Dir(t.Dir), t.Key+".building-")
	if err != nil {
		return t, fmt.Errorf("creating a build directory in %s: %w", filepath.Dir(t.Dir), err)
	}
	defer os.RemoveAll(tmp)
	tmpBin := filepath.Join(tmp, "bin")
	for _, m := range Modules {
		dir := filepath.Join(repoRoot, filepath.FromSlash(m.Dir))
		args := append([]string{"install"}, m.Packages...)
		cmd := exec.CommandContext(ctx, t.Go.Path, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOBIN="+tmpBin, "GOWORK=off", "GOFLAGS="+readonlyGOFLAGS())
		var stderr bytes.Buffer
		cmd.Stdout = log
		cmd.Stderr = io.MultiWriter(log, &stderr)
		fmt.Fprintf(log, "kernel tools: (cd %s && GOBIN=%s %s)\n", dir, tmpBin, strings.Join(cmd.Args, " "))
		if err := cmd.Run(); err != nil {
			return t, fmt.Errorf("building %s from the pinned module %s: %w\n%s", strings.Join(m.Packages, ", "), m.Dir, err, strings.TrimSpace(stderr.String()))
		}
	}
	if !complete(tmpBin) {
		return t, fmt.Errorf("go install in %s left %s without %s, %s and %s", strings.Join(moduleDirs(), ", "), tmpBin, GoNB, GoImports, GoPLS)
	}
	if err := os.RemoveAll(t.Dir); err != nil {
		return t, err
	}
	if err := os.Rename(tmp, t.Dir); err != nil {
		return t, fmt.Errorf("moving the built tools into the cache %s: %w", t.Dir, err)
	}
	t.Built = true
	return t, nil
}

// readonlyGOFLAGS is $GOFLAGS with any -mod setting replaced by -mod=readonly,
// so a build never edits the pinned go.mod files.
func readonlyGOFLAGS() string {
	var keep []string
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		if !strings.HasPrefix(f, "-mod=") && !strings.HasPrefix(f, "--mod=") {
			keep = append(keep, f)
		}
	}
	return strings.Join(append(keep, "-mod=readonly"), " ")
}

func describe(ctx context.Context, repoRoot string, o Options) (Tools, error) {
	g, err := FindGo(ctx)
	if err != nil {
		return Tools{}, err
	}
	root := o.Root
	if root == "" {
		if root, err = DefaultRoot(); err != nil {
			return Tools{}, err
		}
	}
	key, err := Key(repoRoot, g)
	if err != nil {
		return Tools{}, err
	}
	dir := filepath.Join(root, key)
	return Tools{Key: key, Dir: dir, Bin: filepath.Join(dir, "bin"), Go: g}, nil
}

// complete reports whether bin holds all three programs.
func complete(bin string) bool {
	for _, p := range []string{GoNB, GoImports, GoPLS} {
		if !isExecutable(filepath.Join(bin, p)) {
			return false
		}
	}
	return true
}

func moduleDirs() []string {
	var ds []string
	for _, m := range Modules {
		ds = append(ds, m.Dir)
	}
	return ds
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// exitDetail adds a command's stderr to its exit error.
func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
