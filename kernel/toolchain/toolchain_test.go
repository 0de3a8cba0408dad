package toolchain

import (
	"context"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// repoRoot is the checkout holding this package.
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// copyPins copies the tools modules' pin files into a new directory laid out
// like the repository.
func copyPins(t *testing.T) string {
	t.Helper()
	src, dst := repoRoot(t), t.TempDir()
	for _, m := range Modules {
		for _, name := range []string{"go.mod", "go.sum", "tools.go"} {
			b, err := os.ReadFile(filepath.Join(src, m.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dst, m.Dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

func TestKeyDependsOnPinsGoVersionAndPlatform(t *testing.T) {
	repo := copyPins(t)
	g := Go{Version: "go1.26.8", Platform: "linux/amd64"}
	k1, err := Key(repo, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 16 {
		t.Errorf("key %q is not 16 hex digits", k1)
	}
	if k2, _ := Key(repo, g); k2 != k1 {
		t.Errorf("same inputs gave keys %s and %s", k1, k2)
	}
	if k, _ := Key(repo, Go{Version: "go1.26.9", Platform: "linux/amd64"}); k == k1 {
		t.Error("the key ignores the Go version")
	}
	if k, _ := Key(repo, Go{Version: "go1.26.8", Platform: "linux/arm64"}); k == k1 {
		t.Error("the key ignores the platform")
	}
	sum := filepath.Join(repo, "kernel", "tools", "gopls", "go.sum")
	f, err := os.OpenFile(sum, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("example.com/x v1.0.0 h1:AAAA\n")
	f.Close()
	if k, _ := Key(repo, g); k == k1 {
		t.Error("the key ignores gopls's go.sum")
	}
	os.Remove(filepath.Join(repo, "kernel", "tools", "gonb", "tools.go"))
	if _, err := Key(repo, g); err == nil {
		t.Error("a missing tools.go gave no error")
	}
}

// TestEnsureBuildsPinnedVersionsOnce builds the tools into a fresh cache root
// from two goroutines at once: one builds, the other waits for it, and both get
// binaries whose build information carries the pinned versions. A third call
// finds them cached.
func TestEnsureBuildsPinnedVersionsOnce(t *testing.T) {
	repo := repoRoot(t)
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]Tools, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Ensure(ctx, repo, Options{Root: root})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if results[0].Bin != results[1].Bin {
		t.Fatalf("two builds of the same pins went to %s and %s", results[0].Bin, results[1].Bin)
	}
	if results[0].Built == results[1].Built {
		t.Errorf("built = %v and %v: exactly one concurrent call must build", results[0].Built, results[1].Built)
	}
	tools := results[0]
	if tools.Bin != filepath.Join(root, tools.Key, "bin") {
		t.Errorf("bin %s is not <root>/<key>/bin", tools.Bin)
	}
	checks := []struct{ program, module, version string }{
		{GoNB, "github.com/janpfeifer/gonb", GoNBVersion},
		{GoImports, "golang.org/x/tools", GoImportsToolsVersion},
		{GoPLS, "golang.org/x/tools/gopls", GoPLSVersion},
	}
	for _, c := range checks {
		info, err := buildinfo.ReadFile(tools.Path(c.program))
		if err != nil {
			t.Fatalf("%s: %v", c.program, err)
		}
		got := ""
		if info.Main.Path == c.module {
			got = info.Main.Version
		}
		for _, d := range info.Deps {
			if d.Path == c.module {
				got = d.Version
			}
		}
		if got != c.version {
			t.Errorf("%s built from %s %q, want %s", c.program, c.module, got, c.version)
		}
		if info.GoVersion != tools.Go.Version {
			t.Errorf("%s built with %s, want %s", c.program, info.GoVersion, tools.Go.Version)
		}
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && e.Name() != tools.Key {
			t.Errorf("left-over build directory %s", e.Name())
		}
	}

	start := time.Now()
	again, err := Ensure(ctx, repo, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if again.Built || again.Bin != tools.Bin {
		t.Errorf("third call: built=%v bin=%s", again.Built, again.Bin)
	}
	t.Logf("cached lookup took %s", time.Since(start))
	if _, ok, err := Lookup(ctx, repo, Options{Root: root}); !ok || err != nil {
		t.Errorf("Lookup after a build: ok=%v err=%v", ok, err)
	}
	if _, ok, _ := Lookup(ctx, repo, Options{Root: t.TempDir()}); ok {
		t.Error("Lookup in an empty cache reported the tools as built")
	}
}

func TestReadonlyGOFLAGS(t *testing.T) {
	t.Setenv("GOFLAGS", "-buildvcs=false -mod=mod -trimpath")
	if got, want := readonlyGOFLAGS(), "-buildvcs=false -trimpath -mod=readonly"; got != want {
		t.Errorf("readonlyGOFLAGS = %q, want %q", got, want)
	}
	t.Setenv("GOFLAGS", "")
	if got := readonlyGOFLAGS(); got != "-mod=readonly" {
		t.Errorf("readonlyGOFLAGS = %q", got)
	}
}

func TestFindGoHonoursPRISM_GO(t *testing.T) {
	g, err := FindGo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if g.Version == "" || g.GOROOT == "" || g.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("FindGo = %+v", g)
	}
	t.Setenv("PRISM_GO", filepath.Join(t.TempDir(), "no-go"))
	if _, err := FindGo(context.Background()); err == nil {
		t.Error("PRISM_GO pointing nowhere gave no error")
	}
}
