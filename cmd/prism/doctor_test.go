package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// runDoctorCLI runs `prism ARGS...` (a doctor invocation) and returns its
// output. A doctor failure is accepted only when every FAIL line is a
// missing dataset (the data is not installed everywhere the tests run)
// unless wantFail is set.
func runDoctorCLI(t *testing.T, wantFail bool, args ...string) string {
	t.Helper()
	stdout, _, err := runPrism(t, args...)
	var failed errDoctorFailed
	switch {
	case err == nil && wantFail:
		t.Fatalf("prism %s succeeded, expected a failed check:\n%s", strings.Join(args, " "), stdout)
	case err != nil && !errors.As(err, &failed):
		t.Fatalf("prism %s: %v\n%s", strings.Join(args, " "), err, stdout)
	case err != nil && !wantFail:
		for _, line := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(line, "[FAIL]") && !strings.HasPrefix(line, "[FAIL] dataset ") {
				t.Fatalf("prism %s: unexpected failure %q:\n%s", strings.Join(args, " "), line, stdout)
			}
		}
	}
	return stdout
}

func wantLines(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestChooseBackend(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	if got := chooseBackend("", false); got != (backendChoice{"go", "default"}) {
		t.Errorf("no flag, no env: %+v", got)
	}
	t.Setenv(backend.EnvVar, " xla:cuda ")
	if got := chooseBackend("", false); got != (backendChoice{"xla:cuda", "$PRISM_BACKEND"}) {
		t.Errorf("env: %+v", got)
	}
	if got := chooseBackend("go:ops_sequential", true); got != (backendChoice{"go:ops_sequential", "--backend"}) {
		t.Errorf("flag beats env: %+v", got)
	}
	if got := chooseBackend("go", true).String(); got != "go (from --backend)" {
		t.Errorf("String: %q", got)
	}
}

func TestDoctorDefaultBackend(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	out := runDoctorCLI(t, false, "doctor")
	wantLines(t, out,
		"[ok]   prism binary: built with go1.",
		"[ok]   backend go: chosen by default",
		"[ok]   backend computes: a 4×3·3×2 float32 product matches Go arithmetic",
		"CPU kernels: "+backend.Kernels(),
		"XLA (PJRT): ",
		"LAPACK: ",
		"plugins: ",
		"Jupyter kernel",
		"prism doctor: ")
}

func TestDoctorBackendFromEnvAndFlag(t *testing.T) {
	t.Setenv(backend.EnvVar, "go:parallelism=-1")
	out := runDoctorCLI(t, false, "doctor")
	wantLines(t, out, "[ok]   backend go:parallelism=-1: chosen by $PRISM_BACKEND")

	// The persistent flag works before and after the sub-command, beats the
	// environment, and is exported for what prism runs next.
	for _, args := range [][]string{{"--backend", "go:ops_sequential", "doctor"}, {"doctor", "--backend", "go:ops_sequential"}} {
		out = runDoctorCLI(t, false, args...)
		wantLines(t, out, "[ok]   backend go:ops_sequential: chosen by --backend")
		if got := os.Getenv(backend.EnvVar); got != "go:ops_sequential" {
			t.Errorf("%v: $%s = %q after the command, expected the flag's value", args, backend.EnvVar, got)
		}
	}
}

func TestDoctorUnknownBackendFails(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	out := runDoctorCLI(t, true, "--backend", "tpu", "doctor")
	wantLines(t, out,
		`[FAIL] backend tpu: chosen by --backend; creating it failed: backend "tpu": unknown backend "tpu"`,
		"fix: use --backend go",
		"[skip] backend computes: needs the backend",
		"prism doctor: 1 required check(s) failed")
}

func TestEmptyBackendFlag(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	_, _, err := runPrism(t, "--backend", " ", "doctor")
	if err == nil || !strings.Contains(err.Error(), "--backend is empty") {
		t.Errorf("err = %v, expected --backend is empty", err)
	}
}

// TestMissingPluginThroughCLI asks for the CUDA plugin, which no machine
// running the tests here has, through the doctor and a training command.
func TestMissingPluginThroughCLI(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	out := runDoctorCLI(t, true, "--backend", "xla:cuda", "doctor")
	if backend.XLAAvailable {
		wantLines(t, out,
			`[FAIL] PJRT plugin: loading "cuda": plugin name "cuda" not found in paths [`,
			"/usr/local/lib/gomlx/pjrt",
			"fix: install JAX's CUDA PJRT plugin with scripts/setup.sh cuda",
			"[skip] backend xla:cuda: chosen by --backend; needs the PJRT plugin")
	} else {
		wantLines(t, out, "this prism binary was built without XLA support", "fix: rebuild prism with cgo")
	}

	missing := "/nonexistent/prism-test/pjrt_c_api_cuda_plugin.so"
	out = runDoctorCLI(t, true, "doctor", "--backend", "xla:"+missing)
	if backend.XLAAvailable {
		wantLines(t, out, "[FAIL] PJRT plugin: stat "+missing+": no such file or directory")
	}

	// A training command fails before training, saying where it looked.
	catalogtest.Open(t, "digits")
	args := append([]string{"--backend", "xla:cuda", "pretrain", "--task", "digits", "--epochs", "1"}, tinyModel(t.TempDir())...)
	_, _, err := runPrism(t, args...)
	switch {
	case err == nil:
		t.Fatal("pretrain --backend xla:cuda succeeded on a machine without the CUDA plugin")
	case backend.XLAAvailable:
		for _, w := range []string{`backend "xla:cuda": no usable PJRT plugin named "cuda"`, "not found in paths [", "PJRT_PLUGIN_LIBRARY_PATH"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("pretrain error lacks %q: %v", w, err)
			}
		}
	default:
		if !strings.Contains(err.Error(), "built without XLA support") {
			t.Errorf("pretrain error: %v", err)
		}
	}
	_, _, err = runPrism(t, append([]string{"pretrain", "--backend", "xla:" + missing, "--task", "digits"}, tinyModel(t.TempDir())...)...)
	if err == nil || (backend.XLAAvailable && !strings.Contains(err.Error(), missing+": no such file or directory")) {
		t.Errorf("pretrain with a missing plugin file: %v", err)
	}
}
