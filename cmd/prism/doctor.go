package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/kernel"
	"github.com/prism-lora/prism/kernel/jupyter"
	"github.com/prism-lora/prism/kernel/toolchain"
	"github.com/prism-lora/prism/plugins/host"
)

func init() { addCommand(newDoctorCmd) }

// doctorOptions are the inputs of `prism doctor`.
type doctorOptions struct {
	Backend     backendChoice // the backend to check (flag, env or default)
	Full        bool          // also run the Jupyter kernel's full doctor (executes a notebook)
	OnlyBackend bool          // check the binary, the backend, the CPU kernels and XLA only
	Timeout     time.Duration // limit of the full kernel doctor's notebook
	DataDir     string        // data cache ("" = $PRISM_DATA_DIR or ~/.cache/prism/data)
	Out         io.Writer
}

// doctorStatus is the outcome of one check.
type doctorStatus string

const (
	doctorOK   doctorStatus = "ok"
	doctorFail doctorStatus = "FAIL" // something required is missing or broken: exit status 1
	doctorWarn doctorStatus = "warn" // something optional is missing; prism still works
	doctorSkip doctorStatus = "skip" // not checked because a check it needs failed
)

// doctorCheck is one line of the checklist.
type doctorCheck struct {
	Name   string
	Status doctorStatus
	Detail string
	Fix    string // the command that fixes a FAIL or warn
}

// errDoctorFailed is returned when a required check failed (exit status 1).
type errDoctorFailed struct{ n int }

func (e errDoctorFailed) Error() string {
	return fmt.Sprintf("doctor: %d required check(s) failed", e.n)
}
func (e errDoctorFailed) ExitCode() int { return 1 }

func newDoctorCmd() *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this installation: backend, kernels, XLA/PJRT, LAPACK, datasets, plugins, Jupyter kernel",
		Long: `doctor checks what prism needs and prints one line per check:

  ok    present and working
  FAIL  required and missing or broken; the line after it is the command that fixes it
  warn  optional and missing (prism works without it); with the command that adds it
  skip  not checked because a check it depends on failed

Checks, in order: the prism binary (Go version, cgo); the backend a training
command would use and why (--backend, $PRISM_BACKEND, or the default "go"), created
and run on a small matrix product whose result is compared with Go arithmetic; for
"xla:…" backends the PJRT plugin's path and the PJRT C API version it reports; the
pure-Go backend's CPU kernels; whether XLA is built in and which PJRT plugins are
installed (nothing is ever downloaded); LAPACK and the BLAS threads used by the SVDs;
the datasets (MNIST and Fashion-MNIST, the default tasks, are required); the plugin
directories; the Go toolchain; and the "prism" Jupyter kernel (registered or not;
--full also runs 'prism kernel doctor', which executes a notebook).

The exit status is 1 when a required check failed.`,
		Example: `  prism doctor
  prism doctor --backend xla:cuda
  PJRT_PLUGIN_LIBRARY_PATH=/opt/prism/cuda/pjrt prism --backend xla:cuda doctor
  prism doctor --full
  prism doctor --backend-only --backend xla:/opt/prism/cuda/pjrt/pjrt_c_api_cuda_plugin.so`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Backend = backendOf(cmd)
			o.Out = cmd.OutOrStdout()
			return runDoctor(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Full, "full", false, "also run the Jupyter kernel's full doctor, which executes a test notebook (slower)")
	f.BoolVar(&o.OnlyBackend, "backend-only", false, "check only the binary, the backend (and its PJRT plugin), the CPU kernels and XLA")
	f.DurationVar(&o.Timeout, "timeout", 3*time.Minute, "time limit of the test notebook with --full")
	f.StringVar(&o.DataDir, "data-dir", "", "data cache `folder` to check (default $PRISM_DATA_DIR, else ~/.cache/prism/data)")
	return cmd
}

// runDoctor runs every check, prints the checklist and fails when a
// required check failed.
func runDoctor(ctx context.Context, o doctorOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Backend.Spec == "" {
		o.Backend = chooseBackend("", false)
	}
	checks := doctorChecks(ctx, o)
	failed, warned := 0, 0
	for _, c := range checks {
		fmt.Fprintf(o.Out, "%-6s %s", "["+string(c.Status)+"]", c.Name)
		if c.Detail != "" {
			fmt.Fprintf(o.Out, ": %s", strings.ReplaceAll(strings.TrimSpace(c.Detail), "\n", "\n       "))
		}
		fmt.Fprintln(o.Out)
		if (c.Status == doctorFail || c.Status == doctorWarn) && c.Fix != "" {
			fmt.Fprintf(o.Out, "       fix: %s\n", c.Fix)
		}
		switch c.Status {
		case doctorFail:
			failed++
		case doctorWarn:
			warned++
		}
	}
	if failed > 0 {
		fmt.Fprintf(o.Out, "prism doctor: %d required check(s) failed, %d warning(s)\n", failed, warned)
		return errDoctorFailed{failed}
	}
	fmt.Fprintf(o.Out, "prism doctor: everything required works (%d warning(s))\n", warned)
	return nil
}

// doctorChecks runs the checks in order.
func doctorChecks(ctx context.Context, o doctorOptions) []doctorCheck {
	var out []doctorCheck
	add := func(c doctorCheck) { out = append(out, c) }

	add(checkBinary())
	for _, c := range checkBackend(o.Backend) {
		add(c)
	}
	add(checkKernels())
	add(checkXLA())
	if o.OnlyBackend {
		return out
	}
	add(checkLAPACK())
	for _, c := range checkDatasets(ctx, o.DataDir) {
		add(c)
	}
	add(checkPlugins())
	add(checkGoToolchain(ctx))
	for _, c := range checkJupyterKernel(ctx, o.Full, o.Timeout) {
		add(c)
	}
	return out
}

// checkBinary describes the running prism binary.
func checkBinary() doctorCheck {
	cgo := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "CGO_ENABLED" {
				cgo = s.Value
			}
		}
	}
	return doctorCheck{Name: "prism binary", Status: doctorOK,
		Detail: fmt.Sprintf("built with %s for %s/%s, CGO_ENABLED=%s", runtime.Version(), runtime.GOOS, runtime.GOARCH, cgo)}
}

// backendFix is the advice for a backend that cannot be created; loaded
// says the PJRT plugin itself loaded (so its device or drivers are at fault).
func backendFix(spec string, loaded bool) string {
	if !strings.HasPrefix(spec, "xla:") {
		return `use --backend go (or unset $` + backend.EnvVar + `)`
	}
	switch {
	case !backend.XLAAvailable:
		return "rebuild prism with cgo (CGO_ENABLED=1 go build ./cmd/prism), or use --backend go"
	case loaded:
		return "the plugin loaded but could not start its device: check the GPU and its driver (nvidia-smi) and the CUDA libraries next to the plugin " +
			"(scripts/gpu-check-plugin.sh arranges them), or use --backend go"
	}
	return "install JAX's CUDA PJRT plugin with scripts/setup.sh cuda and put the directory it prints on $PJRT_PLUGIN_LIBRARY_PATH " +
		"(or give --backend xla:/abs/path/pjrt_c_api_cuda_plugin.so); or use --backend go"
}

// checkBackend creates the chosen backend and runs a small matrix product on it.
func checkBackend(choice backendChoice) []doctorCheck {
	name := "backend " + choice.Spec
	var out []doctorCheck
	if plugin, ok := strings.CutPrefix(choice.Spec, "xla:"); ok && backend.XLAAvailable && plugin != "" {
		probe := checkPJRTPlugin(plugin)
		out = append(out, probe)
		if probe.Status == doctorFail {
			return append(out,
				doctorCheck{Name: name, Status: doctorSkip, Detail: "chosen by " + choice.Source + "; needs the PJRT plugin"},
				doctorCheck{Name: "backend computes", Status: doctorSkip, Detail: "needs the backend"})
		}
	}
	loaded := len(out) > 0 // the PJRT plugin check passed
	b, err := newBackendSafely(choice.Spec)
	if err != nil {
		out = append(out, doctorCheck{Name: name, Status: doctorFail,
			Detail: fmt.Sprintf("chosen by %s; creating it failed: %v", choice.Source, err), Fix: backendFix(choice.Spec, loaded)})
		out = append(out, doctorCheck{Name: "backend computes", Status: doctorSkip, Detail: "needs the backend"})
		return out
	}
	defer b.Finalize()
	out = append(out, doctorCheck{Name: name, Status: doctorOK,
		Detail: fmt.Sprintf("chosen by %s: %s", choice.Source, b.Description())})
	took, err := checkMatmul(b)
	if err != nil {
		out = append(out, doctorCheck{Name: "backend computes", Status: doctorFail, Detail: err.Error(), Fix: backendFix(choice.Spec, true)})
		return out
	}
	out = append(out, doctorCheck{Name: "backend computes", Status: doctorOK,
		Detail: fmt.Sprintf("a 4×3·3×2 float32 product matches Go arithmetic (compiled and ran in %.1f ms)", took.Seconds()*1000)})
	return out
}

// newBackendSafely is backend.New with panics turned into errors (a
// broken plugin can make GoMLX panic).
func newBackendSafely(spec string) (b backends.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return backend.New(spec)
}

// checkMatmul computes x·w on b and compares it with the same product in
// Go: x 4×3, w 3×2 of small integers, so float32 is exact.
func checkMatmul(b backends.Backend) (took time.Duration, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("running a matrix product panicked: %v", r)
		}
	}()
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	w := []float32{1, -1, 2, 0, -3, 1}
	want := make([]float32, 8)
	for i := range 4 {
		for j := range 2 {
			for k := range 3 {
				want[i*2+j] += x[i*3+k] * w[k*2+j]
			}
		}
	}
	start := time.Now()
	res, err := graph.ExecOnce(b, func(x, w *graph.Node) *graph.Node { return graph.Dot(x, w) },
		tensors.FromFlatDataAndDimensions(x, 4, 3), tensors.FromFlatDataAndDimensions(w, 3, 2))
	if err != nil {
		return 0, fmt.Errorf("running a matrix product: %w", err)
	}
	took = time.Since(start)
	got := tensors.MustCopyFlatData[float32](res)
	if len(got) != len(want) {
		return took, fmt.Errorf("a 4×3·3×2 product gave %d values, expected 8", len(got))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			return took, fmt.Errorf("a 4×3·3×2 product gave %v, expected %v", got, want)
		}
	}
	return took, nil
}

// checkKernels reports the pure-Go backend's matrix-product kernels.
func checkKernels() doctorCheck {
	k := backend.Kernels()
	if strings.HasPrefix(k, "prism gemm") {
		return doctorCheck{Name: "CPU kernels", Status: doctorOK, Detail: k}
	}
	fix := "unset " + backend.KernelsEnvVar
	if os.Getenv(backend.KernelsEnvVar) != "stock" {
		fix = "none: this GoMLX build's simplego layout is not the one prism's kernels were written for (see docs/engine.md)"
	}
	return doctorCheck{Name: "CPU kernels", Status: doctorWarn, Detail: k + ": the go backend works, 5–15× slower", Fix: fix}
}

// checkXLA reports whether XLA is built in and which PJRT plugins gopjrt finds.
func checkXLA() doctorCheck {
	if !backend.XLAAvailable {
		return doctorCheck{Name: "XLA (PJRT)", Status: doctorWarn,
			Detail: "not built in (this binary has no cgo or was built with -tags noxla): only the go backend",
			Fix:    "CGO_ENABLED=1 go build ./cmd/prism   (XLA is optional; the go backend is the default)"}
	}
	found := pjrtPluginsFound()
	if len(found) == 0 {
		return doctorCheck{Name: "XLA (PJRT)", Status: doctorOK,
			Detail: "built in; no PJRT plugin installed (optional; searched " + pjrtSearchDescription() + ")"}
	}
	return doctorCheck{Name: "XLA (PJRT)", Status: doctorOK,
		Detail: "built in; plugins: " + describePluginMap(found) + " (use --backend xla:NAME)"}
}

// checkLAPACK reports the SVD back-end and its BLAS threads.
func checkLAPACK() doctorCheck {
	if !lowrank.LAPACKAvailable() {
		return doctorCheck{Name: "LAPACK", Status: doctorWarn,
			Detail: "not built in: SVDs use gonum (pure Go, several times slower)",
			Fix:    "scripts/setup.sh build && CGO_ENABLED=1 go build ./cmd/prism"}
	}
	return doctorCheck{Name: "LAPACK", Status: doctorOK,
		Detail: fmt.Sprintf("OpenBLAS + LAPACKE, %d BLAS thread(s)", lowrank.BLASThreads())}
}

// requiredDatasets are the tasks of the default experiment (pretrain on A,
// fine-tune on B).
var requiredDatasets = []string{train.DefaultTaskA, train.DefaultTaskB}

// checkDatasets finds and verifies every catalog dataset without fetching.
func checkDatasets(ctx context.Context, dir string) []doctorCheck {
	if dir == "" {
		d, err := catalog.DefaultDir()
		if err != nil {
			return []doctorCheck{{Name: "datasets", Status: doctorFail, Detail: err.Error(), Fix: "export " + catalog.EnvDataDir + "=/some/folder"}}
		}
		dir = d
	}
	store, err := catalog.NewStore(dir)
	if err != nil {
		return []doctorCheck{{Name: "datasets", Status: doctorFail, Detail: err.Error(), Fix: "export " + catalog.EnvDataDir + "=/some/writable/folder"}}
	}
	var present, missingOptional []string
	var out []doctorCheck
	for _, name := range catalog.Names() {
		st, err := store.Status(ctx, name)
		required := false
		for _, r := range requiredDatasets {
			required = required || r == name
		}
		switch {
		case err != nil:
			out = append(out, doctorCheck{Name: "dataset " + name, Status: doctorFail, Detail: err.Error(), Fix: "prism data fetch " + name})
		case st.Present:
			present = append(present, name)
		case required:
			out = append(out, doctorCheck{Name: "dataset " + name, Status: doctorFail,
				Detail: "required by the default experiment; " + st.Problem, Fix: "prism data fetch " + name + "   (or: scripts/setup.sh data)"})
		default:
			missingOptional = append(missingOptional, name)
		}
	}
	if len(present) > 0 {
		out = append([]doctorCheck{{Name: "datasets", Status: doctorOK,
			Detail: fmt.Sprintf("%s present (data cache %s)", strings.Join(present, ", "), dir)}}, out...)
	}
	if len(missingOptional) > 0 {
		out = append(out, doctorCheck{Name: "optional datasets", Status: doctorWarn,
			Detail: strings.Join(missingOptional, ", ") + " not installed", Fix: "prism data fetch --all   (or: scripts/setup.sh data)"})
	}
	return out
}

// checkPlugins lists the plugin directories and what they hold, without
// starting any plugin.
func checkPlugins() doctorCheck {
	dirs := host.SearchPath()
	found, err := host.Discover(dirs)
	if err != nil {
		return doctorCheck{Name: "plugins", Status: doctorWarn, Detail: err.Error(), Fix: "prism plugins list"}
	}
	if len(found) == 0 {
		return doctorCheck{Name: "plugins", Status: doctorOK,
			Detail: "none installed (optional; searched " + strings.Join(dirs, ", ") + ")"}
	}
	var ok, bad []string
	for _, p := range found {
		label := fmt.Sprintf("%s %s", p.Kind, p.Name)
		if p.Status == host.StatusOK {
			ok = append(ok, label)
		} else {
			bad = append(bad, fmt.Sprintf("%s (%s, %s)", label, p.Status, p.Path))
		}
	}
	detail := fmt.Sprintf("%d ready: %s; searched %s", len(ok), strings.Join(ok, ", "), strings.Join(dirs, ", "))
	if len(bad) > 0 {
		return doctorCheck{Name: "plugins", Status: doctorWarn,
			Detail: detail + "\nnot usable: " + strings.Join(bad, "; "), Fix: "prism plugins pin   (after checking the binaries), see 'prism plugins list'"}
	}
	return doctorCheck{Name: "plugins", Status: doctorOK, Detail: detail}
}

// checkGoToolchain looks for the go command (needed by notebooks and to build plugins).
func checkGoToolchain(ctx context.Context) doctorCheck {
	g, err := toolchain.FindGo(ctx)
	if err != nil {
		return doctorCheck{Name: "Go toolchain", Status: doctorWarn,
			Detail: err.Error() + " (needed by the Jupyter kernel and to build plugins, not by prism itself)",
			Fix:    "install Go " + strings.TrimPrefix(kernel.MinGo, "go") + " or newer and put its bin directory on PATH"}
	}
	return doctorCheck{Name: "Go toolchain", Status: doctorOK, Detail: fmt.Sprintf("%s (%s)", g.Version, g.Path)}
}

// checkJupyterKernel checks that Jupyter finds the prism kernelspec; with
// full it runs the kernel's own doctor (which executes a notebook), whose
// failures then count as failures.
func checkJupyterKernel(ctx context.Context, full bool, timeout time.Duration) []doctorCheck {
	const fix = "make kernel   (or: scripts/setup.sh jupyter && prism kernel install)"
	if full {
		r := kernel.Doctor(ctx, kernel.DoctorOptions{Timeout: timeout})
		var out []doctorCheck
		for _, c := range r.Checks {
			st := doctorOK
			switch c.Status {
			case kernel.Failed:
				st = doctorFail
			case kernel.Skipped:
				st = doctorSkip
			}
			out = append(out, doctorCheck{Name: "kernel: " + c.Name, Status: st, Detail: c.Detail, Fix: c.Fix})
		}
		return out
	}
	jup, err := jupyter.Find()
	if err != nil {
		return []doctorCheck{{Name: "Jupyter kernel", Status: doctorWarn, Detail: err.Error() + " (optional: for notebooks)", Fix: fix}}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	specs, err := jup.KernelSpecs(ctx)
	if err != nil {
		return []doctorCheck{{Name: "Jupyter kernel", Status: doctorWarn, Detail: err.Error(), Fix: fix}}
	}
	spec, ok := specs[kernel.Name]
	if !ok {
		return []doctorCheck{{Name: "Jupyter kernel", Status: doctorWarn,
			Detail: fmt.Sprintf("Jupyter (%s) has no %q kernelspec (optional: for notebooks)", jup.Path, kernel.Name), Fix: fix}}
	}
	if len(spec.Argv) == 0 {
		return []doctorCheck{{Name: "Jupyter kernel", Status: doctorWarn, Detail: "the kernelspec in " + spec.ResourceDir + " has no program", Fix: fix}}
	}
	if _, err := os.Stat(spec.Argv[0]); err != nil {
		return []doctorCheck{{Name: "Jupyter kernel", Status: doctorWarn,
			Detail: fmt.Sprintf("the kernelspec in %s runs %s, which is missing", spec.ResourceDir, spec.Argv[0]), Fix: fix}}
	}
	return []doctorCheck{{Name: "Jupyter kernel", Status: doctorOK,
		Detail: fmt.Sprintf("%q registered (%s, program %s); 'prism doctor --full' executes a test notebook", kernel.Name, spec.ResourceDir, spec.Argv[0])}}
}

// errNoXLA is the probe error in builds without XLA.
var errNoXLA = errors.New("this prism binary was built without XLA support")
