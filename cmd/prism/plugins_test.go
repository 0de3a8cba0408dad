package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prism-lora/prism/plugins/plugintest"
)

// The plugins commands on real plugin binaries: list shows each with its
// version and checksum status (ok, unpinned, checksum-mismatch), inspect
// shows the hyperparameters, pin writes the manifest.
func TestPluginsCommands(t *testing.T) {
	dir := t.TempDir()
	energy := plugintest.Build(t, "../../plugins/ref/prism-method-energy", dir, "prism-method-energy")
	rw := plugintest.Build(t, "../../plugins/ref/prism-method-randwindow", dir, "prism-method-randwindow")
	var out bytes.Buffer
	o := pluginsOptions{Dirs: []string{dir}, Timeout: 20 * time.Second, Out: &out}
	ctx := context.Background()

	if err := runPluginsList(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`method\s+energy\s+-\s+unpinned`).MatchString(out.String()) {
		t.Errorf("before pinning, list shows:\n%s", out.String())
	}

	out.Reset()
	if err := runPluginsPin(o, []string{energy, rw}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "pinned ") != 2 {
		t.Errorf("pin printed:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "prism-plugins.json")); err != nil {
		t.Fatal(err)
	}

	// Tamper with one binary after pinning.
	f, err := os.OpenFile(rw, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()

	out.Reset()
	if err := runPluginsList(ctx, o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`method\s+energy\s+1\.0\.0\s+ok\s+[0-9a-f]{12}\s+` + regexp.QuoteMeta(energy), `method\s+randwindow\s+-\s+checksum-mismatch`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("list lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := runPluginsInspect(ctx, o, "energy"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"method plugin energy", "status:    ok", "needs SVD: true", `threshold\s+float\s+0\.9\s+\[0, 1\]`, `measure\s+string\s+energy\s+energy\|nuclear`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("inspect lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runPluginsInspect(ctx, o, "randwindow"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "not run: the binary changed since it was pinned") {
		t.Errorf("inspect of a tampered plugin:\n%s", out.String())
	}
	if err := runPluginsInspect(ctx, o, "nosuch"); err == nil || !strings.Contains(err.Error(), `no plugin named "nosuch"`) {
		t.Errorf("inspect nosuch: %v", err)
	}
}
