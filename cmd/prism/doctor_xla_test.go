//go:build cgo && !noxla

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// gopjrtDir is the gopjrt module's source directory.
func gopjrtDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", "github.com/gomlx/gopjrt").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/gomlx/gopjrt: %v", err)
	}
	dir, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if version != gopjrtVersion {
		t.Errorf("go.mod has gopjrt %s, doctor says %s", version, gopjrtVersion)
	}
	return dir
}

// TestGopjrtHeaderVersion checks the PJRT C API version the doctor quotes
// against gopjrt's header.
func TestGopjrtHeaderVersion(t *testing.T) {
	h, err := os.ReadFile(filepath.Join(gopjrtDir(t), "pjrt", "pjrt_c_api.h"))
	if err != nil {
		t.Fatal(err)
	}
	major := regexp.MustCompile(`(?m)^#define PJRT_API_MAJOR (\d+)$`).FindSubmatch(h)
	minor := regexp.MustCompile(`(?m)^#define PJRT_API_MINOR (\d+)$`).FindSubmatch(h)
	if major == nil || minor == nil {
		t.Fatal("pjrt_c_api.h defines no PJRT_API_MAJOR/MINOR")
	}
	if got := string(major[1]) + "." + string(minor[1]); got != gopjrtPJRTAPI {
		t.Errorf("header is PJRT C API %s, doctor says %s", got, gopjrtPJRTAPI)
	}
}

// buildStubPlugin compiles testdata/stubpjrt into dir as a PJRT plugin
// reporting C API version major.minor.
func buildStubPlugin(t *testing.T, dir string, major, minor int) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (scripts/setup.sh build installs gcc)")
	}
	out := filepath.Join(dir, "pjrt_c_api_stub_plugin.so")
	cmd := exec.Command(cc, "-shared", "-fPIC", "-Wall", "-Werror", "-I", filepath.Join(gopjrtDir(t), "pjrt"),
		fmt.Sprintf("-DSTUB_MAJOR=%d", major), fmt.Sprintf("-DSTUB_MINOR=%d", minor),
		"-o", out, filepath.Join("testdata", "stubpjrt", "stub_plugin.c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stub plugin: %v\n%s", err, b)
	}
	return out
}

// TestDoctorReportsPluginVersion loads a real (stub) PJRT plugin: the
// doctor prints the version it reports and the client-creation error.
func TestDoctorReportsPluginVersion(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	plugin := buildStubPlugin(t, t.TempDir(), 0, 99)
	out := runDoctorCLI(t, true, "doctor", "--backend", "xla:"+plugin)
	wantLines(t, out,
		"[ok]   PJRT plugin: "+plugin+": PJRT C API 0.99 (prism's gopjrt v0.10.0 was built against 0.81); stub_version=prism-test-stub",
		"same major version, minor 99 vs 81",
		"[FAIL] backend xla:"+plugin+": chosen by --backend; creating it failed:",
		"stub PJRT plugin: no device here (prism test stub)",
		"fix: the plugin loaded but could not start its device",
		"[skip] backend computes")

	// A training command gives the plugin's own error.
	catalogtest.Open(t, "digits")
	_, _, err := runPrism(t, "--backend", "xla:"+plugin, "pretrain", "--task", "digits", "--model", "mlp", "--cache-dir", t.TempDir(), "--quiet")
	if err == nil || !strings.Contains(err.Error(), "stub PJRT plugin: no device here") {
		t.Errorf("pretrain with the stub plugin: %v", err)
	}
}

func TestDoctorRejectsOtherMajorVersion(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	plugin := buildStubPlugin(t, t.TempDir(), 1, 2)
	out := runDoctorCLI(t, true, "doctor", "--backend", "xla:"+plugin)
	wantLines(t, out,
		"[FAIL] PJRT plugin: "+plugin+": PJRT C API 1.2",
		"a different major version is incompatible",
		"[skip] backend xla:"+plugin)
}

func TestDoctorUnloadablePlugin(t *testing.T) {
	t.Setenv(backend.EnvVar, "")
	plugin := filepath.Join(t.TempDir(), "pjrt_c_api_broken_plugin.so")
	if err := os.WriteFile(plugin, []byte("not a shared library"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := runDoctorCLI(t, true, "doctor", "--backend", "xla:"+plugin)
	wantLines(t, out, "[FAIL] PJRT plugin: loading", "failed to dynamically load PJRT plugin", "check with `ldd "+plugin)
}
