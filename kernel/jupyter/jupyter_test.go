package jupyter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExecuteArgs(t *testing.T) {
	o := ExecuteOptions{CellTimeout: 90 * time.Second, Output: "/tmp/out/a.ipynb", AllowErrors: true}
	want := []string{"nbconvert", "--to", "notebook", "--execute",
		"--ExecutePreprocessor.kernel_name=prism", "--ExecutePreprocessor.timeout=90",
		"--ExecutePreprocessor.startup_timeout=120", "--allow-errors",
		"--output-dir", "/tmp/out", "--output", "a.ipynb", "nb/a.ipynb"}
	if got := o.Args("nb/a.ipynb"); !slices.Equal(got, want) {
		t.Errorf("Args = %q\nwant   %q", got, want)
	}
	o = ExecuteOptions{Kernel: "other", InPlace: true}
	got := o.Args("x.ipynb")
	if !slices.Contains(got, "--inplace") || !slices.Contains(got, "--ExecutePreprocessor.kernel_name=other") ||
		!slices.Contains(got, "--ExecutePreprocessor.timeout=600") || slices.Contains(got, "--allow-errors") {
		t.Errorf("Args = %q", got)
	}
}

func TestLocationFlags(t *testing.T) {
	cases := []struct {
		l    Location
		want []string
	}{
		{Location{}, []string{"--user"}},
		{Location{Prefix: "/opt/p"}, []string{"--prefix", "/opt/p"}},
		{Location{SysPrefix: true}, []string{"--sys-prefix"}},
	}
	for _, c := range cases {
		if got := c.l.Flags(); !slices.Equal(got, c.want) {
			t.Errorf("%+v.Flags() = %q, want %q", c.l, got, c.want)
		}
	}
}

func TestFindHonoursPRISM_JUPYTER(t *testing.T) {
	t.Setenv("PRISM_JUPYTER", filepath.Join(t.TempDir(), "nope"))
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "PRISM_JUPYTER") {
		t.Errorf("err = %v", err)
	}
}

// TestKernelSpecsAndInstall runs the real jupyter: a kernelspec installed into
// a fresh JUPYTER_DATA_DIR is listed with its argv.
func TestKernelSpecsAndInstall(t *testing.T) {
	jup, err := Find()
	if err != nil {
		t.Fatalf("%v (install Jupyter with %s)", err, SetupCommand)
	}
	data := t.TempDir()
	t.Setenv("JUPYTER_DATA_DIR", data)
	src := t.TempDir()
	spec := `{"argv": ["/bin/true", "{connection_file}"], "display_name": "Probe", "language": "none", "env": {"A": "b"}}`
	if err := os.WriteFile(filepath.Join(src, "kernel.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir, err := jup.InstallKernelSpec(ctx, src, "probe-kernel", Location{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(data, "kernels", "probe-kernel"); dir != want {
		t.Errorf("installed in %s, want %s", dir, want)
	}
	specs, err := jup.KernelSpecs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := specs["probe-kernel"]
	if !ok {
		t.Fatalf("kernelspec list lacks probe-kernel: %v", specs)
	}
	if s.DisplayName != "Probe" || !slices.Equal(s.Argv, []string{"/bin/true", "{connection_file}"}) || s.Env["A"] != "b" || s.ResourceDir != dir {
		t.Errorf("spec = %+v", s)
	}
	if v, err := jup.SubcommandVersion(ctx, "nbconvert"); err != nil || v == "" {
		t.Errorf("nbconvert version %q, %v", v, err)
	}
}

// TestExecuteFailures: an unknown kernel fails nbconvert; a kernel that never
// starts is killed, with its whole process group, when the context ends.
func TestExecuteFailures(t *testing.T) {
	jup, err := Find()
	if err != nil {
		t.Fatalf("%v (install Jupyter with %s)", err, SetupCommand)
	}
	data := t.TempDir()
	t.Setenv("JUPYTER_DATA_DIR", data)
	dir := t.TempDir()
	nb := filepath.Join(dir, "n.ipynb")
	doc := `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "id": "a", "metadata": {}, "execution_count": null, "outputs": [], "source": "1"}]}`
	if err := os.WriteFile(nb, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = jup.Execute(ctx, nb, ExecuteOptions{Kernel: "no-such-kernel", Output: filepath.Join(dir, "out", "n.ipynb")})
	if err == nil || !strings.Contains(err.Error(), "no-such-kernel") {
		t.Errorf("unknown kernel: err = %v", err)
	}

	// A "kernel" that sleeps instead of answering; marker file shows it started.
	marker := filepath.Join(dir, "started")
	src := t.TempDir()
	spec := `{"argv": ["/bin/sh", "-c", "touch ` + marker + `; exec sleep 600", "{connection_file}"], "display_name": "Sleeper", "language": "none"}`
	if err := os.WriteFile(filepath.Join(src, "kernel.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := jup.InstallKernelSpec(ctx, src, "sleeper", Location{}); err != nil {
		t.Fatal(err)
	}
	// Cancel once the kernel runs (nbconvert's start-up takes seconds on a busy machine).
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil {
				break
			}
		}
		started <- time.Now()
		cancel()
	}()
	err = jup.Execute(cctx, nb, ExecuteOptions{Kernel: "sleeper", Output: filepath.Join(dir, "out", "n.ipynb")})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("hanging kernel: err = %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the sleeper kernel never started: %v", err)
	}
	stopped := time.Since(<-started)
	t.Logf("Execute returned %s after the cancellation", stopped.Round(100*time.Millisecond))
	if stopped > stopGrace+5*time.Second {
		t.Errorf("Execute returned %s after the cancellation, past the grace period", stopped)
	}
	// Nothing may still run "sleep 600" from this test.
	time.Sleep(500 * time.Millisecond)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "sleep\x00600") {
			if env, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "environ")); strings.Contains(string(env), data) {
				t.Errorf("the sleeper kernel survived: %s", p)
			}
		}
	}
}
