package kernel_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-lora/prism/kernel"
	"github.com/prism-lora/prism/kernel/jupyter"
	"github.com/prism-lora/prism/kernel/kerneltest"
	"github.com/prism-lora/prism/kernel/toolchain"
)

func TestMain(m *testing.M) { os.Exit(kerneltest.Main(m)) }

func TestInstallRegistersTheKernel(t *testing.T) {
	k := kerneltest.Install(t)
	res := k.Result

	// Jupyter itself lists it, in the test's data directory.
	out, err := exec.Command(k.Jupyter.Path, "kernelspec", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("jupyter kernelspec list: %v\n%s", err, out)
	}
	wantLine := filepath.Join(k.DataDir, "kernels", kernel.Name)
	if !strings.Contains(string(out), wantLine) {
		t.Errorf("jupyter kernelspec list does not show %s:\n%s", wantLine, out)
	}

	b, err := os.ReadFile(filepath.Join(res.SpecDir, "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec kernel.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.DisplayName != "Go (prism)" || spec.Language != "go" {
		t.Errorf("display name %q, language %q", spec.DisplayName, spec.Language)
	}
	if fi, err := os.Stat(spec.Argv[0]); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("kernel program %s: %v", spec.Argv[0], err)
	}
	for _, want := range []string{"--kernel", "{connection_file}", "--go_work=" + k.Repo, "--raw_error"} {
		if !slices.Contains(spec.Argv, want) {
			t.Errorf("argv %q lacks %q", spec.Argv, want)
		}
	}
	path := filepath.SplitList(spec.Env["PATH"])
	if len(path) != 3 || path[0] != res.Tools.Bin || path[2] != "${PATH}" {
		t.Fatalf("env PATH = %q, want tools bin, Go's bin, ${PATH}", spec.Env["PATH"])
	}
	for _, prog := range []string{"gonb", "goimports", "gopls"} {
		if _, err := os.Stat(filepath.Join(path[0], prog)); err != nil {
			t.Errorf("%s missing from the kernel's PATH: %v", prog, err)
		}
	}
	if _, err := os.Stat(filepath.Join(path[1], "go")); err != nil {
		t.Errorf("go missing from the kernel's PATH: %v", err)
	}

	// Idempotent: a second install finds everything in place and changes nothing.
	again, err := kernel.Install(context.Background(), kernel.InstallOptions{Repo: k.Repo})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Unchanged || again.Tools.Built || again.SpecDir != res.SpecDir {
		t.Errorf("second install: unchanged=%v built=%v dir=%s (first %s)", again.Unchanged, again.Tools.Built, again.SpecDir, res.SpecDir)
	}
	b2, _ := os.ReadFile(filepath.Join(res.SpecDir, "kernel.json"))
	if string(b2) != string(b) {
		t.Error("second install rewrote kernel.json differently")
	}
}

func TestInstallIntoAPrefix(t *testing.T) {
	k := kerneltest.Install(t)
	prefix := t.TempDir()
	res, err := kernel.Install(context.Background(), kernel.InstallOptions{Repo: k.Repo, Location: jupyter.Location{Prefix: prefix}})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(prefix, "share", "jupyter", "kernels", kernel.Name)
	if res.SpecDir != want {
		t.Errorf("installed in %s, want %s", res.SpecDir, want)
	}
	if _, err := os.Stat(filepath.Join(want, "kernel.json")); err != nil {
		t.Fatal(err)
	}
	if res.Registered {
		t.Error("a --prefix outside Jupyter's path reported as registered")
	}
}

func TestDoctorPassesOnAnInstalledKernel(t *testing.T) {
	k := kerneltest.Install(t)
	r := kernel.Doctor(context.Background(), kernel.DoctorOptions{Repo: k.Repo, Timeout: 3 * time.Minute})
	var sb strings.Builder
	r.Write(&sb)
	t.Log("\n" + sb.String())
	if !r.OK() {
		t.Fatalf("doctor failed on a fresh install:\n%s", sb.String())
	}
	var names []string
	for _, c := range r.Checks {
		names = append(names, c.Name)
	}
	for _, want := range []string{"Go toolchain", "Jupyter", `kernelspec "prism"`, "kernelspec paths", "GoNB", "goimports", "gopls",
		"go in the kernel's PATH", "tools match the pins", "one-cell execution", "prism package import"} {
		if !slices.Contains(names, want) {
			t.Errorf("doctor did not check %q (checked %q)", want, names)
		}
	}
}

func TestDoctorSaysWhatIsMissing(t *testing.T) {
	k := kerneltest.Install(t)
	ctx := context.Background()

	// No kernelspec at all. Jupyter also searches Python's user site
	// (~/.local/share/jupyter) whatever JUPYTER_DATA_DIR says, where a user's
	// own `prism kernel install --user` lives: hide it too.
	t.Setenv("JUPYTER_DATA_DIR", t.TempDir())
	t.Setenv("PYTHONNOUSERSITE", "1")
	r := kernel.Doctor(ctx, kernel.DoctorOptions{Repo: k.Repo})
	if r.OK() {
		t.Fatal("doctor passed without a kernelspec")
	}
	failed := r.Failed()
	if len(failed) != 1 || failed[0].Name != `kernelspec "prism"` || !strings.Contains(failed[0].Fix, "prism kernel install") {
		t.Errorf("failed checks %+v, want only the kernelspec, fixed by prism kernel install", failed)
	}
	for _, c := range r.Checks {
		if c.Name == "one-cell execution" && c.Status != kernel.Skipped {
			t.Errorf("execution check ran without a kernelspec: %+v", c)
		}
	}

	// A kernelspec whose program is gone and that lacks --raw_error.
	broken := t.TempDir()
	dir := filepath.Join(broken, "kernels", kernel.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := kernel.NewSpec(k.Repo, toolchain.Tools{Bin: filepath.Join(broken, "no-such-dir"), Go: k.Result.Tools.Go})
	spec.Argv = slices.DeleteFunc(spec.Argv, func(a string) bool { return a == "--raw_error" })
	b, err := spec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	kerneltest.WriteFile(t, dir, "kernel.json", b)
	t.Setenv("JUPYTER_DATA_DIR", broken)
	r = kernel.Doctor(ctx, kernel.DoctorOptions{Repo: k.Repo})
	var sb strings.Builder
	r.Write(&sb)
	report := sb.String()
	for _, want := range []string{
		`[ok]   kernelspec "prism"`,
		"[FAIL] kernelspec paths: the kernel program",
		"argv lacks --raw_error",
		"no-such-dir does not exist",
		"fix: prism kernel install",
		"[skip] one-cell execution",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// TestKernelProtocol runs the Jupyter protocol test (Debian's
// python3-jupyter-kernel-test) against the installed kernel.
func TestKernelProtocol(t *testing.T) {
	k := kerneltest.Install(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(k.Repo, "kernel", "testdata", "test_prism_kernel.py"))
	cmd.Env = append(os.Environ(), "JUPYTER_DATA_DIR="+k.DataDir, "PYDEVD_DISABLE_FILE_VALIDATION=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("protocol test failed: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	if !strings.Contains(string(out), "OK (skipped=5)") {
		t.Errorf("expected the 5 documented skips and nothing else:\n%s", out)
	}
}

func TestFindRepoRoot(t *testing.T) {
	root := kerneltest.RepoRoot(t)
	got, err := kernel.FindRepoRoot(filepath.Join(root, "kernel", "display"))
	if err != nil || got != root {
		t.Errorf("FindRepoRoot(kernel/display) = %q, %v; want %q", got, err, root)
	}
	// The tools modules are other modules: searching from them still finds prism.
	got, err = kernel.FindRepoRoot(filepath.Join(root, "kernel", "tools", "gonb"))
	if err != nil || got != root {
		t.Errorf("FindRepoRoot(kernel/tools/gonb) = %q, %v; want %q", got, err, root)
	}
	other := t.TempDir()
	kerneltest.WriteFile(t, other, "go.mod", []byte("module example.com/other\n\ngo 1.26\n"))
	if _, err := kernel.FindRepoRoot(other); err == nil {
		t.Error("a directory of another module was taken for a prism checkout")
	}
}

func TestNewSpec(t *testing.T) {
	tools := toolchain.Tools{Key: "0123456789abcdef", Bin: "/cache/0123456789abcdef/bin",
		Go: toolchain.Go{Path: "/opt/go/bin/go", Version: "go1.26.8", GOROOT: "/opt/go"}}
	spec := kernel.NewSpec("/src/prism", tools)
	wantArgv := []string{"/cache/0123456789abcdef/bin/gonb", "--kernel", "{connection_file}", "--go_work=/src/prism", "--raw_error"}
	if !slices.Equal(spec.Argv[:5], wantArgv) {
		t.Errorf("argv = %q, want prefix %q", spec.Argv, wantArgv)
	}
	if got := spec.Env["PATH"]; got != "/cache/0123456789abcdef/bin:/opt/go/bin:${PATH}" {
		t.Errorf("PATH = %q", got)
	}
	if kernel.GoWork(spec.Argv) != "/src/prism" {
		t.Errorf("GoWork = %q", kernel.GoWork(spec.Argv))
	}
	b, err := spec.Marshal()
	if err != nil || !strings.HasSuffix(string(b), "}\n") || !strings.Contains(string(b), `"tools_key": "0123456789abcdef"`) {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}
