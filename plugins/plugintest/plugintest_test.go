package plugintest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/plugintest"
)

// The conformance suite on every reference plugin and on the third-party
// example, which is built from its own module.
func TestReferenceMethodPlugins(t *testing.T) {
	for _, c := range []struct{ dir, file string }{
		{"../ref/prism-method-randwindow", "prism-method-randwindow"},
		{"../ref/prism-method-energy", "prism-method-energy"},
		{"../examples/stride", "prism-method-stride"},
	} {
		t.Run(c.file, func(t *testing.T) {
			bin := plugintest.Build(t, c.dir, t.TempDir(), c.file)
			plugintest.CheckMethodPlugin(t, bin)
		})
	}
}

func TestReferenceDatasetPlugin(t *testing.T) {
	catalogtest.Open(t, "digits") // skips (or fails under PRISM_REQUIRE_DATA=1) without the data
	bin := plugintest.Build(t, "../ref/prism-dataset-sklearn-digits", t.TempDir(), "prism-dataset-sklearn-digits")
	plugintest.CheckDatasetPlugin(t, bin)
}

// The plugin's batches are the in-process loader's, example for example,
// for shuffled and sharded passes.
func TestDatasetPluginMatchesInProcess(t *testing.T) {
	local := catalogtest.Open(t, "digits")
	bin := plugintest.Build(t, "../ref/prism-dataset-sklearn-digits", t.TempDir(), "prism-dataset-sklearn-digits")
	h, err := host.New(host.Options{Dirs: []string{plugintest.Install(t, bin)}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	remote, err := h.Dataset(ctx, "sklearn-digits")
	if err != nil {
		t.Fatal(err)
	}
	ls, rs := local.Spec(), remote.Spec()
	if !slices.Equal(ls.ExampleShape, rs.ExampleShape) || !slices.Equal(ls.Classes, rs.Classes) || !slices.Equal(ls.Splits, rs.Splits) || ls.Checksum != rs.Checksum {
		t.Fatalf("specs differ:\nlocal  %+v\nplugin %+v", ls, rs)
	}
	for _, o := range []datasets.BatchOptions{
		{Split: datasets.Train, BatchSize: 64, Shuffle: true, Seed: 11},
		{Split: datasets.Test, BatchSize: 50, Shuffle: true, Seed: 5, Shard: 1, NumShards: 2, DropLast: true},
	} {
		want, err := plugintest.Collect(ctx, local, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := plugintest.Collect(ctx, remote, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Indices) == 0 || !slices.Equal(got.Sizes, want.Sizes) || !slices.Equal(got.Indices, want.Indices) ||
			!slices.Equal(got.Inputs, want.Inputs) || !slices.Equal(got.Labels, want.Labels) {
			t.Errorf("%+v: the plugin's pass differs from the in-process one (%d vs %d examples)", o, len(got.Indices), len(want.Indices))
		}
	}
}

// The suite fails on plugins that break the contract and passes a good one:
// it runs itself in a child process against misbehaving plugin binaries.
func TestConformanceCatchesBadPlugins(t *testing.T) {
	if bin := os.Getenv("PRISM_PLUGINTEST_TARGET"); bin != "" {
		if strings.Contains(bin, "prism-dataset-") {
			plugintest.CheckDatasetPlugin(t, bin)
		} else {
			plugintest.CheckMethodPlugin(t, bin)
		}
		return
	}
	dir := t.TempDir()
	faulty := plugintest.Build(t, "../host/testdata/faulty", dir, "faulty")
	for _, c := range []struct {
		file, mention string
		pass          bool
	}{
		{"prism-method-good", "", true},
		{"prism-method-identity", "does not reproduce W", false},
		{"prism-method-nan", "non-finite element NaN", false},
		{"prism-method-error", "this layer is not to my taste", false},
		{"prism-dataset-good", "", true},
		{"prism-dataset-badlabel", "label 10 of example 0 outside [0, 10)", false},
		{"prism-dataset-short", "the pass ended after 1 batches", false},
	} {
		t.Run(c.file, func(t *testing.T) {
			bin := filepath.Join(dir, c.file)
			data, err := os.ReadFile(faulty)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, data, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceCatchesBadPlugins$", "-test.count=1")
			cmd.Env = append(os.Environ(), "PRISM_PLUGINTEST_TARGET="+bin)
			out, err := cmd.CombinedOutput()
			if c.pass && err != nil {
				t.Fatalf("the suite failed a good plugin: %v\n%s", err, out)
			}
			if !c.pass && (err == nil || !strings.Contains(string(out), c.mention)) {
				t.Fatalf("the suite did not fail %s with %q: %v\n%s", c.file, c.mention, err, out)
			}
		})
	}
}
