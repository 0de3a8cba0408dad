package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/core/method/verify"
	"github.com/prism-lora/prism/plugins/host"
	"github.com/prism-lora/prism/plugins/plugintest"
)

// vitBShapes are the weights of one ViT-B block (out×in): qkv, attention
// output, MLP up, MLP down.
var vitBShapes = [][2]int{{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}}

// BenchmarkViTB moves a ViT-B-sized set of float32 weights (12 blocks ×
// 4 matrices, 85M values) with their SVDs to a method plugin and the
// adapters back, against the same method in-process, and prints a table.
// Both paths run the built-in "mid" window init (r = 16) from the same
// precomputed SVDs; window-init time includes the SVD, which both need.
// $PRISM_BENCH_BLOCKS sets the number of blocks (default 12).
func BenchmarkViTB(b *testing.B) {
	blocks := 12
	if s := os.Getenv("PRISM_BENCH_BLOCKS"); s != "" {
		blocks, _ = strconv.Atoi(s)
	}
	const rank = 16
	dir := b.TempDir()
	bin := filepath.Join(dir, "prism-method-midplugin")
	mustBuild("./testdata/builtinplugin", bin)
	if _, err := host.PinFiles(bin); err != nil {
		b.Fatal(err)
	}
	h, err := host.New(host.Options{Dirs: []string{dir}, CallTimeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	remote, err := h.Method(ctx, "midplugin")
	if err != nil {
		b.Fatal(err)
	}
	local, _ := builtin.New("mid")

	var reqs []method.Request
	var values int
	start := time.Now()
	for blk := range blocks {
		for i, s := range vitBShapes {
			w := plugintest.RandomMatrix(method.Float32, s[0], s[1], uint64(blk*4+i))
			svd, err := builtin.ThinSVD(w)
			if err != nil {
				b.Fatal(err)
			}
			values += s[0] * s[1]
			reqs = append(reqs, method.Request{Layer: fmt.Sprintf("blocks.%d.w%d", blk, i), Weight: w, SVD: svd,
				Rank: rank, Alpha: rank, Scale: 1, Hyper: map[string]method.Value{"svd": {String: "full"}}})
		}
	}
	tSVD := time.Since(start)

	for b.Loop() {
		var tLocal, tVerify, tPlugin time.Duration
		for _, req := range reqs {
			t0 := time.Now()
			res, err := local.Init(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := verify.Result(req, res); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if _, err := remote.Init(ctx, req); err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			tLocal += t1.Sub(t0)
			tVerify += t2.Sub(t1)
			tPlugin += t3.Sub(t2)
		}
		sent := 0
		for _, r := range reqs {
			sent += r.Weight.Rows*r.Weight.Cols + (r.SVD.U.Rows+r.SVD.V.Rows)*r.SVD.U.Cols
		}
		back := values + len(reqs)*rank*0 // Base; A and B are small
		for _, r := range reqs {
			back += rank * (r.Weight.Rows + r.Weight.Cols)
		}
		inproc, plugin := tSVD+tLocal, tSVD+tPlugin
		overhead := float64(plugin-inproc) / float64(inproc)
		fmt.Printf("\nViT-B window init (mid, r=%d, float32): %d blocks, %d matrices, %.1fM weights\n", rank, blocks, len(reqs), float64(values)/1e6)
		fmt.Printf("  data to the plugin %.0f MB (W + U + V), back %.0f MB (Base + A + B)\n", float64(4*sent)/1e6, float64(4*back)/1e6)
		fmt.Printf("  %-44s %10s\n", "step", "seconds")
		fmt.Printf("  %-44s %10.2f\n", "thin SVD of every matrix (both paths)", tSVD.Seconds())
		fmt.Printf("  %-44s %10.2f\n", "init from SVD, in-process", tLocal.Seconds())
		fmt.Printf("  %-44s %10.2f\n", "init from SVD, plugin (transfer+init+verify)", tPlugin.Seconds())
		fmt.Printf("  %-44s %10.2f\n", "  of which host verification (identity)", tVerify.Seconds())
		fmt.Printf("  %-44s %10.2f\n", "window init in-process (SVD + init)", inproc.Seconds())
		fmt.Printf("  %-44s %10.2f\n", "window init via plugin (SVD + plugin)", plugin.Seconds())
		fmt.Printf("  plugin path adds %.1f%% to window-init time (target ≤ 20%%); %.2f s per GB moved\n\n",
			100*overhead, (tPlugin-tLocal).Seconds()/(float64(4*(sent+back))/1e9))
		b.ReportMetric(100*overhead, "overhead-%")
		b.ReportMetric(tPlugin.Seconds(), "plugin-init-s")
		b.ReportMetric(tLocal.Seconds(), "inprocess-init-s")
	}
}
