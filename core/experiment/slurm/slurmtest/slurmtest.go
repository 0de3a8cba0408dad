// Package slurmtest starts a real single-node Slurm for tests, with the
// repository's scripts/slurm-up.sh, and stops it when the test ends.
package slurmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RequireEnv makes an unavailable Slurm a test failure instead of a skip
// when set to 1 (CI machines that install Slurm set it).
const RequireEnv = "PRISM_REQUIRE_SLURM"

// unavailable skips the test, or fails it when Slurm is required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("Slurm required ("+RequireEnv+"=1) but "+format, args...)
	}
	t.Skipf("no Slurm: "+format+" (install with scripts/setup.sh slurm; set "+RequireEnv+"=1 to make this a failure)", args...)
}

// RepoRoot returns the directory holding go.mod, from the working directory up.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Start brings up munged, slurmctld and slurmd on localhost in a fresh state
// directory, sets SLURM_CONF for the test, and tears everything down (jobs
// cancelled first) when the test ends. It returns the state directory.
func Start(t testing.TB) string {
	t.Helper()
	for _, b := range []string{"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol"} {
		if _, err := exec.LookPath(b); err != nil {
			unavailable(t, "%s not found", b)
		}
	}
	root := RepoRoot(t)
	// The cluster listens on fixed ports (6817, 6818): test binaries of
	// several packages (go test ./... runs them in parallel) take turns.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "prism-slurmtest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // runs last: releases the lock after the cluster is down
	// A short path: the munge socket's path must fit in a sockaddr_un.
	dir, err := os.MkdirTemp("", "prism-slurm.")
	if err != nil {
		t.Fatal(err)
	}
	up := exec.Command(filepath.Join(root, "scripts", "slurm-up.sh"), dir)
	out, err := up.CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		if strings.Contains(string(out), "is in use") {
			unavailable(t, "%s", strings.TrimSpace(string(out)))
		}
		t.Fatalf("scripts/slurm-up.sh: %v\n%s", err, out)
	}
	t.Setenv("SLURM_CONF", filepath.Join(dir, "slurm.conf"))
	t.Cleanup(func() {
		down := exec.Command(filepath.Join(root, "scripts", "slurm-down.sh"), dir)
		if out, err := down.CombinedOutput(); err != nil {
			t.Errorf("scripts/slurm-down.sh: %v\n%s", err, out)
		}
	})
	return dir
}
