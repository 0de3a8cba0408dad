// Package kerneltest installs the real prism kernel for tests: the tools are
// built (or taken from the shared cache) and the kernelspec is registered in a
// fresh JUPYTER_DATA_DIR owned by the test, so tests never touch the user's
// Jupyter configuration.
package kerneltest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-lora/prism/kernel"
	"github.com/prism-lora/prism/kernel/jupyter"
)

// Installed is a kernel installed for one test.
type Installed struct {
	Repo    string // repository root
	DataDir string // the test's JUPYTER_DATA_DIR
	Jupyter jupyter.Jupyter
	Result  kernel.InstallResult
}

// RepoRoot returns the root of the checkout the test runs in.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("kerneltest: cannot locate the source file")
	}
	root, err := kernel.FindRepoRoot(filepath.Dir(file))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	once       sync.Once
	installed  Installed
	installErr error
	tempDirs   []string
)

// Main runs a package's tests and then removes the JUPYTER_DATA_DIR Install
// made; call it from TestMain: os.Exit(kerneltest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	return code
}

// Install registers the prism kernel in a JUPYTER_DATA_DIR of its own, once per
// test process, and points JUPYTER_DATA_DIR at it for the whole process (tests
// using it must not run in parallel with tests that need another data dir).
// Packages calling it should use Main in TestMain to clean up. Jupyter must be
// installed (scripts/setup.sh jupyter): a missing Jupyter fails the test rather
// than skipping it.
func Install(t testing.TB) Installed {
	t.Helper()
	once.Do(func() { installed, installErr = install(RepoRoot(t)) })
	if installErr != nil {
		t.Fatalf("installing the prism kernel (needs Jupyter: %s): %v", jupyter.SetupCommand, installErr)
	}
	return installed
}

func install(repo string) (Installed, error) {
	dataDir, err := os.MkdirTemp("", "prism-kerneltest-")
	if err != nil {
		return Installed{}, err
	}
	tempDirs = append(tempDirs, dataDir)
	if err := os.Setenv("JUPYTER_DATA_DIR", dataDir); err != nil {
		return Installed{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := kernel.Install(ctx, kernel.InstallOptions{Repo: repo, Log: &log})
	if err != nil {
		return Installed{}, fmt.Errorf("%w\n%s", err, log.String())
	}
	if !res.Registered {
		return Installed{}, fmt.Errorf("kernel installed in %s but jupyter kernelspec list does not show it", res.SpecDir)
	}
	jup, err := jupyter.Find()
	if err != nil {
		return Installed{}, err
	}
	return Installed{Repo: repo, DataDir: dataDir, Jupyter: jup, Result: res}, nil
}

// WriteFile writes a file under dir for a test.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
