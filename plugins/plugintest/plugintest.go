// Package plugintest is the conformance suite for prism plugins. A plugin
// author builds the binary and runs, in a test:
//
//	bin := plugintest.Build(t, ".", t.TempDir(), "prism-method-mymethod")
//	plugintest.CheckMethodPlugin(t, bin)
//
// The suite runs the binary the way prism does (a pinned copy in a fresh
// plugin directory, through plugins/host) and checks the metadata, the
// answers on tall, wide and square float32 and float64 weights at several
// ranks and hyperparameter settings (host verification: shapes, dtypes,
// finiteness, the identity W = Base + scale·B·A), determinism, concurrent
// calls, a clean shutdown, and that the binary refuses to run by hand.
package plugintest

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/protocol"
)

// Build compiles the main package pkg into outDir/fileName with the go
// command, and returns the binary's path. pkg is a directory (built in its
// own module, which may be another module than the caller's) or an import
// path (resolved from the current directory's module). The go build cache
// keeps repeated builds fast.
func Build(t testing.TB, pkg, outDir, fileName string) string {
	t.Helper()
	out, err := filepath.Abs(filepath.Join(outDir, fileName))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if fi, err := os.Stat(pkg); err == nil && fi.IsDir() {
		cmd = exec.Command("go", "build", "-o", out, ".")
		cmd.Dir = pkg
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s %s: %v\n%s", out, pkg, err, b)
	}
	return out
}

// Install copies the binary into a new temporary plugin directory, pins it
// in that directory's manifest, and returns the directory.
func Install(t testing.TB, binary string) string {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, filepath.Base(binary))
	if err := copyFile(binary, dst); err != nil {
		t.Fatalf("installing %s: %v", binary, err)
	}
	if _, err := host.PinFiles(dst); err != nil {
		t.Fatalf("pinning %s: %v", dst, err)
	}
	return dir
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// kindAndName checks the binary's file name and returns what it declares.
func kindAndName(t *testing.T, binary string, want protocol.Kind) string {
	t.Helper()
	kind, name, ok := host.ParseFileName(filepath.Base(binary))
	if !ok || kind != want {
		t.Fatalf("%s: a %s plugin's file must be named %sNAME", binary, want, want.FilePrefix())
	}
	return name
}

// checkRefusesToRunByHand runs the binary without the magic cookie: it must
// exit non-zero, promptly.
func checkRefusesToRunByHand(t *testing.T, binary string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, protocol.Handshake.MagicCookieKey+"=")
	})
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ctx.Err() != nil {
		t.Errorf("%s run by hand: want a prompt non-zero exit, got err=%v, output %q", binary, err, out)
	}
}

// newHost opens a host on the single plugin directory dir with short deadlines.
func newHost(t *testing.T, dir string) *host.Host {
	t.Helper()
	h, err := host.New(host.Options{Dirs: []string{dir}, StartTimeout: 20 * time.Second, CallTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// RandomMatrix returns an m×n matrix W = Q₁·diag(σ)·Q₂ᵀ-like test weight
// with a decaying spectrum: Gaussian entries scaled by column decay
// 1/(1+j), seeded.
func RandomMatrix(dtype method.DType, m, n int, seed uint64) method.Matrix {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	w := method.Matrix{DType: dtype, Rows: m, Cols: n}
	vals := make([]float64, m*n)
	for i := range vals {
		vals[i] = rng.NormFloat64() / (1 + float64(i%n)) * math.Sqrt(2/float64(n))
	}
	if dtype == method.Float32 {
		w.F32 = make([]float32, m*n)
		for i, v := range vals {
			w.F32[i] = float32(v)
		}
	} else {
		w.F64 = vals
	}
	return w
}

// hyperSettings lists the defaults, then each bounded parameter at its
// bounds and each string parameter at each choice.
func hyperSettings(md method.Metadata) []map[string]method.Value {
	settings := []map[string]method.Value{{}}
	for _, p := range md.Hyperparameters {
		var vs []method.Value
		switch p.Type {
		case method.Int:
			if p.Min != nil {
				vs = append(vs, method.Value{Int: int64(math.Ceil(*p.Min))})
			}
			if p.Max != nil {
				vs = append(vs, method.Value{Int: int64(math.Floor(*p.Max))})
			}
		case method.Float:
			if p.Min != nil {
				vs = append(vs, method.Value{Float: *p.Min})
			}
			if p.Max != nil {
				vs = append(vs, method.Value{Float: *p.Max})
			}
		case method.Bool:
			vs = append(vs, method.Value{Bool: !p.Default.Bool})
		case method.String:
			for _, c := range p.Choices {
				vs = append(vs, method.Value{String: c})
			}
		}
		for _, v := range vs {
			settings = append(settings, map[string]method.Value{p.Name: v})
		}
	}
	return settings
}

// CheckMethodPlugin runs the conformance suite on a method plugin binary
// (named prism-method-NAME).
func CheckMethodPlugin(t *testing.T, binary string) {
	t.Helper()
	name := kindAndName(t, binary, protocol.KindMethod)
	t.Run("RefusesToRunByHand", func(t *testing.T) { checkRefusesToRunByHand(t, binary) })

	dir := Install(t, binary)
	h := newHost(t, dir)
	ctx := context.Background()
	mp, err := h.Method(ctx, name)
	if err != nil {
		t.Fatalf("opening the plugin: %v", err)
	}
	md := mp.Metadata()
	if md.Version == "" || md.Description == "" {
		t.Errorf("metadata: want a version and a description, got %+v", md)
	}

	shapes := []struct{ m, n, r int }{{12, 8, 1}, {8, 12, 3}, {10, 10, 4}, {7, 5, 5}}
	for _, dt := range []method.DType{method.Float32, method.Float64} {
		for _, s := range shapes {
			for hi, hyper := range hyperSettings(md) {
				w := RandomMatrix(dt, s.m, s.n, uint64(s.m*100+s.n))
				req := method.Request{Layer: "conformance.w", Weight: w, Rank: s.r, Alpha: 2 * float64(s.r), Seed: 7, Hyper: hyper}
				req.Scale = req.Alpha / float64(s.r)
				res, err := mp.Init(ctx, req)
				if err != nil {
					t.Errorf("%s %d×%d rank %d hyper #%d %v: %v", dt, s.m, s.n, s.r, hi, hyper, err)
					continue
				}
				again, err := mp.Init(ctx, req)
				if err != nil {
					t.Errorf("%s %d×%d rank %d, second call: %v", dt, s.m, s.n, s.r, err)
					continue
				}
				if !sameMatrix(res.A, again.A) || !sameMatrix(res.B, again.B) || !sameMatrix(res.Base, again.Base) {
					t.Errorf("%s %d×%d rank %d hyper %v: two calls with the same request differ", dt, s.m, s.n, s.r, hyper)
				}
			}
		}
	}

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := RandomMatrix(method.Float64, 16, 9, uint64(i))
				_, err := mp.Init(ctx, method.Request{Layer: "concurrent", Weight: w, Rank: 2, Alpha: 2, Scale: 1, Seed: uint64(i)})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("Shutdown", func(t *testing.T) {
		done := make(chan struct{})
		go func() { mp.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the plugin did not stop within 10 s of the host closing it")
		}
	})
}

func sameMatrix(a, b method.Matrix) bool {
	return a.DType == b.DType && a.Rows == b.Rows && a.Cols == b.Cols &&
		slices.Equal(a.F32, b.F32) && slices.Equal(a.F64, b.F64)
}
