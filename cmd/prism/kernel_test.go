package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeExecuted writes an executed notebook whose one code cell has the given
// stderr text (none when empty).
func writeExecuted(t *testing.T, dir, name, stderr string) string {
	t.Helper()
	outputs := []any{map[string]any{"output_type": "stream", "name": "stdout", "text": "done\n"}}
	if stderr != "" {
		outputs = append(outputs, map[string]any{"output_type": "stream", "name": "stderr", "text": stderr})
	}
	nb := map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{}, "cells": []any{
		map[string]any{"cell_type": "code", "execution_count": 1, "metadata": map[string]any{}, "source": "%%\nrun()", "outputs": outputs},
	}}
	b, err := json.Marshal(nb)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKernelCheckExitsNonZeroOnFailures(t *testing.T) {
	dir := t.TempDir()
	good := writeExecuted(t, dir, "good.ipynb", "")
	bad := writeExecuted(t, dir, "bad.ipynb", "panic: boom\n\ngoroutine 1 [running]:\nexit status 2\n")
	var out bytes.Buffer
	if err := runKernelCheck([]string{good}, &out); err != nil {
		t.Fatalf("clean notebook: %v", err)
	}
	if out.String() != "ok    "+good+"\n" {
		t.Errorf("output %q", out.String())
	}
	out.Reset()
	err := runKernelCheck([]string{good, bad}, &out)
	var ec exitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 1 || err.Error() != "1 of 2 notebook(s) failed" {
		t.Fatalf("err = %v, want exit code 1 and '1 of 2 notebook(s) failed'", err)
	}
	for _, want := range []string{"ok    " + good, "FAIL  " + bad, "cell 0: panic: panic: boom"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := runKernelCheck([]string{filepath.Join(dir, "missing.ipynb")}, &out); err == nil || !strings.Contains(err.Error(), "missing.ipynb") {
		t.Errorf("missing file: %v", err)
	}
}

func TestKernelInstallRejectsTwoLocations(t *testing.T) {
	err := runKernelInstall(context.Background(), kernelInstallOptions{user: true, prefix: "/tmp/x"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "choose one of --user, --prefix and --sys-prefix") {
		t.Errorf("err = %v", err)
	}
}

func TestKernelCommandsAreRegistered(t *testing.T) {
	root := newRootCmd()
	for _, path := range [][]string{{"kernel", "install"}, {"kernel", "doctor"}, {"kernel", "run"}, {"kernel", "check"}} {
		cmd, _, err := root.Find(path)
		if err != nil || cmd.Name() != path[1] {
			t.Errorf("prism %s: %v", strings.Join(path, " "), err)
			continue
		}
	}
	install, _, _ := root.Find([]string{"kernel", "install"})
	for _, flag := range []string{"user", "prefix", "sys-prefix", "repo", "tools-dir", "no-setup", "quiet"} {
		f := install.Flags().Lookup(flag)
		if f == nil || f.Usage == "" {
			t.Errorf("kernel install lacks a documented --%s", flag)
		}
	}
	run, _, _ := root.Find([]string{"kernel", "run"})
	for _, flag := range []string{"small", "in-place", "out", "cell-timeout", "kernel"} {
		if f := run.Flags().Lookup(flag); f == nil || f.Usage == "" {
			t.Errorf("kernel run lacks a documented --%s", flag)
		}
	}
}

// TestKernelDoctorFailsWithoutTheKernel runs the real doctor against an empty
// Jupyter data directory: it must exit non-zero and print the fix.
func TestKernelDoctorFailsWithoutTheKernel(t *testing.T) {
	t.Setenv("JUPYTER_DATA_DIR", t.TempDir())
	t.Setenv("PYTHONNOUSERSITE", "1") // and not the user's own ~/.local kernelspec
	var out bytes.Buffer
	err := runKernelDoctor(context.Background(), kernelDoctorOptions{kernel: "prism"}, &out)
	var ec exitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 1 {
		t.Fatalf("err = %v, want a failure with exit code 1\n%s", err, out.String())
	}
	for _, want := range []string{"[ok]   Go toolchain", `[FAIL] kernelspec "prism"`, "fix: prism kernel install", "[skip] one-cell execution"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out.String())
		}
	}
}
