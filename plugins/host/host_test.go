package host_test

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/plugintest"
)

// Binaries built once for all tests of this package.
var (
	faultyBin     string
	randwindowBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "prism-host-test")
	if err != nil {
		panic(err)
	}
	faultyBin = mustBuild("./testdata/faulty", filepath.Join(dir, "faulty"))
	randwindowBin = mustBuild("../ref/prism-method-randwindow", filepath.Join(dir, "prism-method-randwindow"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func mustBuild(pkg, out string) string {
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		panic("go build " + pkg + ": " + err.Error() + "\n" + string(b))
	}
	return out
}

// installAs copies src into dir as file (mode 0755), pinning it when pin.
func installAs(t *testing.T, dir, src, file string, pin bool) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, file)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if pin {
		if _, err := host.PinFiles(dst); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func newHost(t *testing.T, dir string, callTimeout time.Duration) *host.Host {
	t.Helper()
	h, err := host.New(host.Options{Dirs: []string{dir}, CallTimeout: callTimeout, StartTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func request(dt method.DType, m, n, r int) method.Request {
	w := plugintest.RandomMatrix(dt, m, n, 42)
	return method.Request{Layer: "blocks.0.mlp.fc1", Weight: w, Rank: r, Alpha: float64(r), Scale: 1, Seed: 3}
}

func TestRandWindowPluginEndToEnd(t *testing.T) {
	dir := t.TempDir()
	installAs(t, dir, randwindowBin, "prism-method-randwindow", true)
	h := newHost(t, dir, time.Minute)
	ctx := context.Background()
	mp, err := h.Method(ctx, "randwindow")
	if err != nil {
		t.Fatal(err)
	}
	if md := mp.Metadata(); md.Name != "randwindow" || !md.NeedsSVD || len(md.Hyperparameters) != 2 {
		t.Fatalf("metadata %+v", md)
	}
	for _, dt := range []method.DType{method.Float32, method.Float64} {
		req := request(dt, 24, 16, 4)
		req.Alpha, req.Scale = 8, 2
		res, err := mp.Init(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		// The window is contiguous, and B's columns have squared norms S_c/scale.
		svd, err := builtin.ThinSVD(req.Weight)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Components) != 4 {
			t.Fatalf("%s: components %v", dt, res.Components)
		}
		tol := 1e-4
		if dt == method.Float64 {
			tol = 1e-10
		}
		for j, c := range res.Components {
			if c != res.Components[0]+j {
				t.Fatalf("%s: components %v not a window", dt, res.Components)
			}
			var norm2 float64
			for i := range req.Weight.Rows {
				var v float64
				if dt == method.Float32 {
					v = float64(res.B.F32[i*4+j])
				} else {
					v = res.B.F64[i*4+j]
				}
				norm2 += v * v
			}
			if want := svd.S[c] / req.Scale; math.Abs(norm2-want) > tol*want {
				t.Errorf("%s: ‖B[:,%d]‖² = %g, want S[%d]/scale = %g", dt, j, norm2, c, want)
			}
		}
		// Another layer name draws another start (with 13 possible starts,
		// 8 layers all landing on one start would be a broken seed).
		starts := map[int]bool{}
		for i := range 8 {
			req.Layer = "layer" + string(rune('a'+i))
			res, err := mp.Init(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			starts[res.Components[0]] = true
		}
		if len(starts) < 2 {
			t.Errorf("%s: 8 layers all got start %v", dt, starts)
		}
	}
}

// TestFaults runs a real misbehaving plugin process for each fault: each
// gives an *host.Error naming the plugin and the fault, and the host goes on
// serving a good plugin afterwards.
func TestFaults(t *testing.T) {
	cases := []struct {
		fault   string
		want    host.Fault
		mention string // in the message
		onOpen  bool   // fails when opened, not at Init
	}{
		{"crash", host.FaultCrash, "panic: faulty plugin crashing on layer blocks.0.mlp.fc1", false},
		{"hang", host.FaultTimeout, "no answer within", false},
		{"shape", host.FaultInvalidOutput, "a has shape [5 16], want [4 16]", false},
		{"nan", host.FaultInvalidOutput, "non-finite element NaN at (0,1)", false},
		{"identity", host.FaultInvalidOutput, "does not reproduce W", false},
		{"garbage", host.FaultProtocol, "overflows tensor \"a\"", false},
		{"huge", host.FaultProtocol, "larger than max", false},
		{"error", host.FaultPluginError, "this layer is not to my taste", false},
		{"version", host.FaultProtocolVersion, "Plugin version: 99", true},
		{"stdout", host.FaultHandshake, "hello from a plugin that forgot the handshake", true},
		{"exit", host.FaultHandshake, "faulty plugin: refusing to start", true},
	}
	dir := t.TempDir()
	installAs(t, dir, faultyBin, "prism-method-good", true)
	for _, c := range cases {
		installAs(t, dir, faultyBin, "prism-method-"+c.fault, true)
	}
	h := newHost(t, dir, time.Minute)
	hangHost := newHost(t, dir, 3*time.Second) // a short deadline for the hang only
	ctx := context.Background()
	good, err := h.Method(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			start := time.Now()
			hc := h
			if c.fault == "hang" {
				hc = hangHost
			}
			mp, err := hc.Method(ctx, c.fault)
			if err == nil {
				if c.onOpen {
					t.Fatalf("opening succeeded, want %s", c.want)
				}
				_, err = mp.Init(ctx, request(method.Float32, 24, 16, 4))
			}
			var pe *host.Error
			if !errors.As(err, &pe) {
				t.Fatalf("want a *host.Error, got %T %v", err, err)
			}
			if pe.Fault != c.want || pe.Plugin != c.fault {
				t.Errorf("fault %q of plugin %q, want %q of %q: %v", pe.Fault, pe.Plugin, c.want, c.fault, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, `method plugin "`+c.fault+`"`) || !strings.Contains(msg, c.mention) {
				t.Errorf("message does not name the plugin and mention %q:\n%s", c.mention, msg)
			}
			if r := pe.Reason(); !strings.HasPrefix(r, string(c.want)+": method plugin \""+c.fault+"\"") || strings.Contains(r, "\n") {
				t.Errorf("reason %q is not one line starting with the fault and the plugin", r)
			}
			if c.fault == "hang" {
				if el := time.Since(start); el > 8*time.Second {
					t.Errorf("the hang took %v to be detected (deadline 3 s)", el)
				}
			}
			// The host survives: the good plugin still answers.
			if _, err := good.Init(ctx, request(method.Float64, 12, 9, 2)); err != nil {
				t.Errorf("good plugin after %s: %v", c.fault, err)
			}
		})
	}
}

// TestCrashRestarts: after a crash, the next call starts the plugin again
// (and the hung plugin's process is gone after the timeout).
func TestCrashRestartsAndHangIsKilled(t *testing.T) {
	dir := t.TempDir()
	installAs(t, dir, faultyBin, "prism-method-crash", true)
	installAs(t, dir, faultyBin, "prism-method-hang", true)
	h := newHost(t, dir, 3*time.Second)
	ctx := context.Background()
	crash, err := h.Method(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, err := crash.Init(ctx, request(method.Float64, 10, 8, 2))
		if host.FaultOf(err) != host.FaultCrash {
			t.Fatalf("call %d: %v", i, err)
		}
		if !strings.Contains(err.Error(), "exit status 2") {
			t.Errorf("call %d: the crash report lacks the exit status: %v", i, err)
		}
	}
	hang, err := h.Method(ctx, "hang")
	if err != nil {
		t.Fatal(err)
	}
	pids := pluginPids(t, "prism-method-hang")
	if len(pids) != 1 {
		t.Fatalf("want one hang process, found %v", pids)
	}
	if _, err := hang.Init(ctx, request(method.Float64, 10, 8, 2)); host.FaultOf(err) != host.FaultTimeout {
		t.Fatalf("want a timeout, got %v", err)
	}
	if err := syscall.Kill(pids[0], 0); err == nil {
		t.Errorf("hung plugin process %d is still alive after the timeout", pids[0])
	}
}

// pluginPids finds the running processes of this test's plugin binary name
// that are children of this process.
func pluginPids(t *testing.T, file string) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid := 0
		for _, c := range e.Name() {
			if c < '0' || c > '9' {
				pid = -1
				break
			}
			pid = pid*10 + int(c-'0')
		}
		if pid <= 0 {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) && filepath.Base(exe) == file && fields[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestBinaryFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		bin := installAs(t, dir, randwindowBin, "prism-method-randwindow", true)
		os.Remove(bin)
		h := newHost(t, dir, time.Minute)
		in, err := h.Find("method", "randwindow")
		if err != nil || in.Status != host.StatusMissing {
			t.Fatalf("find: %+v %v", in, err)
		}
		_, err = h.Method(ctx, "randwindow")
		expectFault(t, err, host.FaultMissing, "binary is missing")
	})
	t.Run("not-executable", func(t *testing.T) {
		dir := t.TempDir()
		bin := installAs(t, dir, randwindowBin, "prism-method-randwindow", true)
		os.Chmod(bin, 0o644)
		h := newHost(t, dir, time.Minute)
		_, err := h.Method(ctx, "randwindow")
		expectFault(t, err, host.FaultNotExecutable, "not executable")
	})
	t.Run("checksum-mismatch", func(t *testing.T) {
		dir := t.TempDir()
		bin := installAs(t, dir, randwindowBin, "prism-method-randwindow", true)
		f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("tampered"))
		f.Close()
		h := newHost(t, dir, time.Minute)
		in, _ := h.Find("method", "randwindow")
		if in.Status != host.StatusMismatch {
			t.Errorf("status %q, want %q", in.Status, host.StatusMismatch)
		}
		_, err = h.Method(ctx, "randwindow")
		expectFault(t, err, host.FaultChecksum, "does not match its pinned SHA-256")
	})
	t.Run("unpinned", func(t *testing.T) {
		dir := t.TempDir()
		installAs(t, dir, randwindowBin, "prism-method-randwindow", false)
		h := newHost(t, dir, time.Minute)
		_, err := h.Method(ctx, "randwindow")
		expectFault(t, err, host.FaultUnpinned, "prism plugins pin")
	})
	t.Run("not-found", func(t *testing.T) {
		h := newHost(t, t.TempDir(), time.Minute)
		_, err := h.Method(ctx, "nosuch")
		expectFault(t, err, host.FaultNotFound, "prism-method-nosuch")
	})
}

func expectFault(t *testing.T, err error, want host.Fault, mention string) {
	t.Helper()
	if got := host.FaultOf(err); got != want {
		t.Fatalf("fault %q, want %q: %v", got, want, err)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Errorf("message lacks %q: %v", mention, err)
	}
}

// TestDatasetFaults: a dataset plugin that misbehaves mid-pass gives an
// *host.Error naming it, the batch, and what it did; the host goes on.
func TestDatasetFaults(t *testing.T) {
	cases := []struct {
		fault   string
		want    host.Fault
		mention string
	}{
		{"hang", host.FaultTimeout, "no batch within"},
		{"crash", host.FaultCrash, "panic: faulty dataset crashing on batch 2"},
		{"badlabel", host.FaultInvalidOutput, "label 10 of example 0 outside [0, 10)"},
		{"nan", host.FaultInvalidOutput, "input value NaN of example 0 is not finite"},
		{"short", host.FaultProtocol, "the pass ended after 1 batches, want 5"},
	}
	dir := t.TempDir()
	installAs(t, dir, faultyBin, "prism-dataset-good", true)
	for _, c := range cases {
		installAs(t, dir, faultyBin, "prism-dataset-"+c.fault, true)
	}
	h := newHost(t, dir, 3*time.Second)
	ctx := context.Background()
	good, err := h.Dataset(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	opts := datasets.BatchOptions{Split: "train", BatchSize: 10, Shuffle: true, Seed: 4}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			d, err := h.Dataset(ctx, c.fault)
			if err != nil {
				t.Fatal(err)
			}
			_, err = plugintest.Collect(ctx, d, opts)
			var pe *host.Error
			if !errors.As(err, &pe) || pe.Fault != c.want {
				t.Fatalf("want fault %q, got %v", c.want, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, `dataset plugin "`+c.fault+`"`) || !strings.Contains(msg, `Batches split "train" batch `) || !strings.Contains(msg, c.mention) {
				t.Errorf("message does not name the plugin, the batch and %q:\n%s", c.mention, msg)
			}
			if p, err := plugintest.Collect(ctx, good, opts); err != nil || len(p.Indices) != 50 {
				t.Errorf("good dataset after %s: %d examples, %v", c.fault, len(p.Indices), err)
			}
		})
	}
}
