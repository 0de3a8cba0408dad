package main

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// repoRoot is the checkout (this package lives in scripts/gpu-check).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestStepLossesInvertRunningMeans(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var want []float64
	var s stepLosses
	for epoch := 1; epoch <= 3; epoch++ {
		sum := 0.0
		for k := 1; k <= 17; k++ {
			l := 0.1 + 2*rng.Float64()
			want = append(want, l)
			sum += l
			s.add(train.Progress{Epoch: epoch, Loss: sum / float64(k)})
		}
	}
	if len(s.losses) != len(want) {
		t.Fatalf("%d losses, want %d", len(s.losses), len(want))
	}
	for i := range want {
		if math.Abs(s.losses[i]-want[i]) > 1e-12 {
			t.Errorf("step %d: %v, want %v", i+1, s.losses[i], want[i])
		}
	}
}

// testCurve is a plausible curve: a decaying loss with noise.
func testCurve(label string, steps int, perturb float64) curve {
	rng := rand.New(rand.NewPCG(5, 6))
	c := curve{Label: label, Pretrained: "k", PretrainCached: true, BAcc: 70, AAccBefore: 82, AAccAfter: 40, MeanKL: 1.2}
	for i := range steps {
		c.StepLoss = append(c.StepLoss, 2*math.Exp(-float64(i)/40)+0.3*rng.Float64()+perturb*float64(i%7))
	}
	for e := range 2 {
		m := 0.0
		for _, l := range c.StepLoss[e*steps/2 : (e+1)*steps/2] {
			m += l / float64(steps/2)
		}
		c.Epochs = append(c.Epochs, train.EpochStats{Epoch: e + 1, TrainLoss: m})
	}
	return c
}

func TestCompareCurves(t *testing.T) {
	a := testCurve("a", 128, 0)
	// Float32-level noise passes.
	b := testCurve("b", 128, 0)
	for i := range b.StepLoss {
		b.StepLoss[i] += 1e-6 * float64(i%3-1)
	}
	if _, err := compareCurves(a, b, defaultTolerances); err != nil {
		t.Errorf("float32 noise: %v", err)
	}
	// A different run (larger losses, other accuracy) fails, naming what.
	c := testCurve("c", 128, 0.01)
	c.BAcc, c.MeanKL = 67, 1.3
	cmp, err := compareCurves(a, c, defaultTolerances)
	mm, ok := err.(mismatchError)
	if !ok {
		t.Fatalf("different run: err %v, want a mismatch", err)
	}
	joined := strings.Join(mm.what, "; ")
	for _, w := range []string{"loss", "task B accuracy 3 > 1", "mean KL"} {
		if !strings.Contains(joined, w) {
			t.Errorf("mismatch %q lacks %q", joined, w)
		}
	}
	if math.Abs(cmp.MaxStep-0.06) > 1e-9 || cmp.MaxStepAt%7 != 0 {
		t.Errorf("largest step difference %v at %d, want 0.06 at a step 7k", cmp.MaxStep, cmp.MaxStepAt)
	}
	// Runs from different pretrained models are not compared at all.
	d := testCurve("d", 128, 0)
	d.Pretrained = "other"
	if _, err := compareCurves(a, d, defaultTolerances); err == nil || strings.Contains(err.Error(), "tolerances") {
		t.Errorf("different pretrained models: %v", err)
	}
	e := testCurve("e", 64, 0)
	if _, err := compareCurves(a, e, defaultTolerances); err == nil || !strings.Contains(err.Error(), "128 and 64 steps") {
		t.Errorf("different lengths: %v", err)
	}
}

func TestJudgeSteps(t *testing.T) {
	row := func(impl, variant string, ms float64) stepResult {
		return stepResult{Impl: impl, Variant: variant, Ms: ms, Trainable: 10, Params: 100, Batch: 64, Image: 224}
	}
	rows := []stepResult{
		row("prism", "batch on device", 50), row("prism", "batch from host", 55),
		row("torch", "explicit attention, float32, batch on device", 80),
		row("torch", "explicit attention, tf32 matmuls, batch on device", 40),
		row("torch", "explicit attention, float32, batch from host", 30), // not on device: not a baseline
	}
	v, err := judgeSteps(rows)
	if err != nil {
		t.Fatal(err)
	}
	if v.RatioFastest != 1.25 || v.MetFastest || v.RatioStrict != 0.625 || !v.MetStrict {
		t.Errorf("verdict %+v", v)
	}
	var sb strings.Builder
	writeStepTable(&sb, rows, v)
	for _, w := range []string{"| prism | batch on device |", "| 0.62× |", "1.25× — NOT met", "0.62× — met"} {
		if !strings.Contains(sb.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, sb.String())
		}
	}
	rows[2].Params = 101
	if _, err := judgeSteps(rows); err == nil || !strings.Contains(err.Error(), "different model") {
		t.Errorf("different models: %v", err)
	}
}

// TestSubsetsRoundTrip writes the subsets from the real datasets and reads
// them back: the same images and labels as the first N of each split.
func TestSubsetsRoundTrip(t *testing.T) {
	full := map[string]datasets.InMemory{}
	for _, name := range subsetNames {
		full[name] = catalogtest.Open(t, name)
	}
	dir := t.TempDir()
	if err := runData([]string{"-out", dir, "-train-a", "300", "-train-b", "200", "-test", "50"}); err != nil {
		t.Fatal(err)
	}
	open := openSubsets(dir)
	for name, n := range map[string]int{"mnist": 300, "fashion-mnist": 200} {
		sub, err := open(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if sub.Spec().Checksum == "" || sub.Spec().Checksum == full[name].Spec().Checksum {
			t.Errorf("%s: subset checksum %q", name, sub.Spec().Checksum)
		}
		for split, size := range map[string]int{datasets.Train: n, datasets.Test: 50} {
			got, err := sub.Arrays(split)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := full[name].Arrays(split)
			if got.Size != size || !slices.Equal(got.Inputs, want.Inputs[:len(got.Inputs)]) || !slices.Equal(got.Labels, want.Labels[:size]) {
				t.Errorf("%s %s: subset differs from the first %d examples", name, split, size)
			}
		}
	}
	// A changed file is refused.
	f := subsetFiles(dir, "mnist").TestLabels
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := open(context.Background(), "mnist"); err == nil || !strings.Contains(err.Error(), "manifest says") {
		t.Errorf("tampered subset: %v", err)
	}
}

// fakeSite is a site-packages tree shaped like the GPU machine's: JAX's
// plugin under jax_plugins/xla_cuda13 and NVIDIA's pip libraries under
// nvidia/ (cu13 with ptxas and libdevice, cudnn, nccl).
func fakeSite(t *testing.T, plugin []byte) string {
	t.Helper()
	site := filepath.Join(t.TempDir(), "site-packages")
	files := map[string][]byte{
		"jax_plugins/xla_cuda13/__init__.py":         nil,
		"jax_plugins/xla_cuda13/xla_cuda_plugin.so":  plugin,
		"nvidia/cu13/lib/libcublas.so.13":            nil,
		"nvidia/cu13/bin/ptxas":                      nil,
		"nvidia/cu13/nvvm/libdevice/libdevice.10.bc": nil,
		"nvidia/cudnn/lib/libcudnn.so.9":             nil,
		"nvidia/nccl/lib/libnccl.so.2":               nil,
	}
	for p, b := range files {
		full := filepath.Join(site, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return site
}

func runScript(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", name), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPluginArrangement(t *testing.T) {
	site := fakeSite(t, []byte("plugin bytes"))
	check := func(dest, out string) {
		t.Helper()
		plugin := filepath.Join(dest, "pjrt", "pjrt_c_api_cuda_plugin.so")
		st1, err1 := os.Stat(plugin)
		st2, err2 := os.Stat(filepath.Join(site, "jax_plugins/xla_cuda13/xla_cuda_plugin.so"))
		if err1 != nil || err2 != nil {
			t.Fatalf("%v %v\n%s", err1, err2, out)
		}
		if fi, _ := os.Lstat(plugin); fi.Mode()&os.ModeSymlink != 0 {
			t.Errorf("the plugin is a symbolic link; $ORIGIN would be JAX's folder")
		}
		if st1.Sys().(*syscall.Stat_t).Ino != st2.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("the plugin is not a hard link of JAX's (same file system)")
		}
		for link, want := range map[string]string{
			"nvidia/cu13": "nvidia/cu13", "nvidia/cudnn": "nvidia/cudnn", "nvidia/nccl": "nvidia/nccl",
			"nvidia/bin": "nvidia/cu13/bin", "nvidia/nvvm": "nvidia/cu13/nvvm",
		} {
			got, err := os.Readlink(filepath.Join(dest, link))
			if err != nil || got != filepath.Join(site, want) {
				t.Errorf("%s -> %q (%v), want %s", link, got, err, filepath.Join(site, want))
			}
		}
		// gopjrt's own check: $ORIGIN/../nvidia of the plugin is a folder.
		if fi, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(plugin)), "nvidia")); err != nil || !fi.IsDir() {
			t.Errorf("no nvidia folder at $ORIGIN/../nvidia: %v", err)
		}
		env, err := os.ReadFile(filepath.Join(dest, "env.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{
			`export PJRT_PLUGIN_LIBRARY_PATH="` + filepath.Join(dest, "pjrt") + `"`,
			`export PRISM_CUDA_PLUGIN="` + plugin + `"`,
			dest + "/nvidia/cu13/lib:" + dest + "/nvidia/cudnn/lib:" + dest + "/nvidia/nccl/lib",
			"--xla_gpu_cuda_data_dir=" + dest + "/nvidia",
		} {
			if !strings.Contains(string(env), w) {
				t.Errorf("env.sh lacks %q:\n%s", w, env)
			}
		}
		if !strings.HasSuffix(strings.TrimSpace(out), dest) {
			t.Errorf("the script's last line is not the folder:\n%s", out)
		}
	}

	dest := filepath.Join(t.TempDir(), "cuda")
	out, err := runScript(t, nil, "gpu-check-plugin.sh", "--site", site, dest)
	if err != nil {
		t.Fatalf("--site: %v\n%s", err, out)
	}
	check(dest, out)
	// Again (idempotent), found through Python's import machinery this time.
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		out, err = runScript(t, []string{"PYTHONPATH=" + site}, "gpu-check-plugin.sh", "--python", "/usr/bin/python3", dest)
		if err != nil {
			t.Fatalf("--python: %v\n%s", err, out)
		}
		check(dest, out)
	}

	// No plugin: exit 1 saying where it looked and how to install it.
	empty := t.TempDir()
	out, err = runScript(t, nil, "gpu-check-plugin.sh", "--site", empty, filepath.Join(t.TempDir(), "x"))
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("no plugin: err %v\n%s", err, out)
	}
	for _, w := range []string{"no JAX CUDA PJRT plugin", empty + "/jax_plugins/xla_cuda13/xla_cuda_plugin.so", "scripts/setup.sh cuda"} {
		if !strings.Contains(out, w) {
			t.Errorf("no-plugin message lacks %q:\n%s", w, out)
		}
	}
}

// buildStubPlugin compiles cmd/prism/testdata/stubpjrt (a PJRT plugin
// reporting C API 0.99 whose client creation fails); nil without a C
// compiler.
func buildStubPlugin(t *testing.T) []byte {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Log("no C compiler: the stub-plugin part is skipped")
		return nil
	}
	gopjrt, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/gomlx/gopjrt").Output()
	if err != nil {
		t.Fatal(err)
	}
	so := filepath.Join(t.TempDir(), "stub.so")
	cmd := exec.Command(cc, "-shared", "-fPIC", "-I", filepath.Join(strings.TrimSpace(string(gopjrt)), "pjrt"), "-o", so,
		filepath.Join(repoRoot(t), "cmd", "prism", "testdata", "stubpjrt", "stub_plugin.c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stub plugin: %v\n%s", err, b)
	}
	b, err := os.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildTools builds the carried binaries and the data subsets once into
// a temporary .gpu folder, as `gpu-check.sh --prepare` does.
func buildTools(t *testing.T) string {
	t.Helper()
	catalogtest.Open(t, "mnist")
	catalogtest.Open(t, "fashion-mnist")
	dir := filepath.Join(t.TempDir(), "gpu")
	out, err := runScript(t, []string{"GPU_CHECK_DIR=" + dir}, "gpu-check.sh", "--prepare")
	if err != nil {
		t.Fatalf("--prepare: %v\n%s", err, out)
	}
	for _, f := range []string{"prism.gz", "gpu-check.gz", "data/mnist/manifest.json", "data/fashion-mnist/manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--prepare made no %s", f)
		}
	}
	return dir
}

// TestGPUCheckScript runs the script as the GPU machine and a CPU machine
// would: the CPU-only rehearsal end to end, and the GPU mode on this
// machine (no GPU, no JAX), where it must stop at the plugin with a clear
// message; without the prepared folder it says how to make it.
func TestGPUCheckScript(t *testing.T) {
	out, err := runScript(t, []string{"GPU_CHECK_DIR=" + filepath.Join(t.TempDir(), "none")}, "gpu-check.sh")
	if err == nil || !strings.Contains(out, "run 'scripts/gpu-check.sh --prepare' on a machine with Go and carry") {
		t.Errorf("GPU mode without the prepared folder: %v\n%s", err, out)
	}

	dir := buildTools(t)
	results := t.TempDir()
	env := []string{"GPU_CHECK_DIR=" + dir, "OUT=" + results,
		"GPU_CHECK_PRETRAIN_SUBSET=1024", "GPU_CHECK_TRAIN_SUBSET=512", "GPU_CHECK_TEST_SUBSET=300"}
	out, err = runScript(t, env, "gpu-check.sh", "--cpu-only")
	if err != nil {
		t.Fatalf("--cpu-only: %v\n%s", err, out)
	}
	for _, w := range []string{
		"== 1. fine-tuning loss curves: cpu (go, prism kernels) vs cpu (go, simplego's own kernels) ==",
		"curves agree within the tolerances",
		"| prism | batch on device | go",
		"| prism | batch from host | go",
		"gpu-check: all checks passed (cpu mode",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("--cpu-only output lacks %q:\n%s", w, out)
		}
	}
	if exec.Command("/usr/bin/python3", "-c", "import torch").Run() == nil && !strings.Contains(out, "| torch | explicit attention, float32, batch on device | cpu") {
		t.Errorf("PyTorch is installed but the table has no PyTorch row:\n%s", out)
	}
	for _, f := range []string{"curve-accel.json", "curve-ref.json", "curves.txt", "steps.jsonl", "table.md"} {
		if _, err := os.Stat(filepath.Join(results, f)); err != nil {
			t.Errorf("OUT lacks %s", f)
		}
	}

	// GPU mode with a PJRT plugin that loads but has no device: a stub
	// built from cmd/prism/testdata, installed where JAX's plugin would be.
	if stub := buildStubPlugin(t); stub != nil {
		site := fakeSite(t, stub)
		out, err = runScript(t, []string{"GPU_CHECK_DIR=" + dir, "OUT=" + t.TempDir(), "PYTHON=/usr/bin/python3", "PYTHONPATH=" + site}, "gpu-check.sh")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("GPU mode with the stub plugin: err %v\n%s", err, out)
		}
		for _, w := range []string{
			"plugin: " + site + "/jax_plugins/xla_cuda13/xla_cuda_plugin.so",
			"[ok]   PJRT plugin: ", "pjrt_c_api_cuda_plugin.so: PJRT C API 0.99 (prism's gopjrt v0.10.0 was built against 0.81)",
			"stub PJRT plugin: no device here (prism test stub)",
			"the XLA backend does not work",
			"FAILED: prism doctor --backend xla:",
		} {
			if !strings.Contains(out, w) {
				t.Errorf("GPU mode with the stub plugin: output lacks %q:\n%s", w, out)
			}
		}
	}

	// GPU mode here: no JAX plugin for this Python.
	out, err = runScript(t, []string{"GPU_CHECK_DIR=" + dir, "OUT=" + t.TempDir(), "PYTHON=/usr/bin/python3"}, "gpu-check.sh")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("GPU mode without a plugin: err %v\n%s", err, out)
	}
	for _, w := range []string{"no JAX CUDA PJRT plugin", "sys.path of /usr/bin/python3", "FAILED: no PJRT plugin folder"} {
		if !strings.Contains(out, w) {
			t.Errorf("GPU mode without a plugin: output lacks %q:\n%s", w, out)
		}
	}
}
