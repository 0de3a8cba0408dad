// Command benchlowrank times window initialisation of a ViT-B-shaped layer set
// (12 blocks × {2304×768, 768×768, 3072×768, 768×3072}, float32) with package
// lowrank against numpy.linalg.svd on the very same matrices, and randomized
// PiSSA initialisation against the exact one. It prints one table.
//
// The matrices are generated deterministically (W = U·diag(σ)·Vᵀ, random
// orthonormal U and V, power-law σ_i = σ₁·(1+i)^−p), written as raw float32 to
// a temporary directory, and read there by numpy_baseline.py, run with the
// Debian interpreter (numpy on OpenBLAS). Rounds are interleaved (numpy, then
// each Go configuration) and the fastest round of each is reported, so that
// load from other processes hits every contender alike.
//
//	go run ./core/lowrank/internal/cmd/benchlowrank [-rounds 3] [-blocks 12]
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/lowrank/lowranktest"
)

type options struct {
	blocks, rank, rounds int
	exponent             float64
	python, script, dir  string
	variants             bool
	niter, oversample    int
}

func main() {
	var o options
	flag.IntVar(&o.blocks, "blocks", 12, "transformer blocks (4 matrices each)")
	flag.IntVar(&o.rank, "rank", 16, "adapter rank r")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds; the fastest of each contender is reported")
	flag.Float64Var(&o.exponent, "exponent", 0.7, "power-law exponent p of the generated spectra σ_i ∝ (1+i)^−p")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "interpreter with Debian's numpy (on OpenBLAS)")
	flag.StringVar(&o.script, "numpy-script", "", "numpy_baseline.py (default: next to this source file)")
	flag.StringVar(&o.dir, "dir", "", "directory for the generated matrices (default: a temporary one, removed)")
	flag.BoolVar(&o.variants, "variants", true, "also time every SVD strategy × parallelism variant")
	flag.IntVar(&o.niter, "niter", 0, "randomized SVD power iterations (0: lowrank.DefaultNIter)")
	flag.IntVar(&o.oversample, "oversample", 0, "randomized SVD oversampling (0: lowrank.DefaultOversample)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-lowrank:", err)
		os.Exit(1)
	}
}

// layer is one generated weight and where it is stored for numpy.
type layer struct {
	Name       string `json:"name"`
	Rows       int    `json:"rows"`
	Cols       int    `json:"cols"`
	File       string `json:"file"`
	w          lowrank.Matrix[float32]
	start      int // mid window start
	upperBound []float64
}

func vitShapes(blocks int) []layer {
	var ls []layer
	for b := 0; b < blocks; b++ {
		for _, s := range []struct {
			name string
			m, n int
		}{{"attn.qkv", 2304, 768}, {"attn.proj", 768, 768}, {"mlp.fc1", 3072, 768}, {"mlp.fc2", 768, 3072}} {
			ls = append(ls, layer{Name: fmt.Sprintf("blocks.%d.%s", b, s.name), Rows: s.m, Cols: s.n})
		}
	}
	return ls
}

func generate(ls []layer, exponent float64, rank int) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	sem := make(chan struct{}, runtime.NumCPU())
	for i := range ls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l := &ls[i]
			k := min(l.Rows, l.Cols)
			top := 1 + 0.5*math.Sin(float64(i)) // vary the scale across layers
			w, err := lowranktest.WithSpectrum[float32](l.Rows, l.Cols, lowranktest.PowerLawSpectrum(k, top, exponent), uint64(7919*i+1))
			l.w, errs[i] = w, err
			l.start = (k - rank) / 2
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("generating %s: %w", ls[i].Name, err)
		}
	}
	return nil
}

func writeMatrices(ls []layer, dir string) error {
	for i := range ls {
		l := &ls[i]
		l.File = filepath.Join(dir, fmt.Sprintf("w%03d.f32", i))
		buf := make([]byte, 4*len(l.w.Data))
		for j, v := range l.w.Data {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		if err := os.WriteFile(l.File, buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

type numpyResult struct {
	Seconds []float64   `json:"seconds"`
	Windows [][]float64 `json:"windows"`
	Numpy   string      `json:"numpy"`
}

func runNumpy(o options, ls []layer, dir, mode string, scale float64) (numpyResult, time.Duration, error) {
	starts := make([]int, len(ls))
	for i, l := range ls {
		starts[i] = l.start
	}
	job, _ := json.Marshal(map[string]any{"matrices": ls, "rank": o.rank, "scale": scale, "starts": starts, "mode": mode})
	jobPath := filepath.Join(dir, "job-"+mode+".json")
	resPath := filepath.Join(dir, "result-"+mode+".json")
	if err := os.WriteFile(jobPath, job, 0o644); err != nil {
		return numpyResult{}, 0, err
	}
	cmd := exec.Command(o.python, o.script, jobPath, resPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return numpyResult{}, 0, fmt.Errorf("%s %s: %w", o.python, o.script, err)
	}
	data, err := os.ReadFile(resPath)
	if err != nil {
		return numpyResult{}, 0, err
	}
	var res numpyResult
	if err := json.Unmarshal(data, &res); err != nil {
		return numpyResult{}, 0, fmt.Errorf("reading %s: %w", resPath, err)
	}
	var total float64
	for _, s := range res.Seconds {
		total += s
	}
	return res, time.Duration(total * float64(time.Second)), nil
}

// goConfig is one way of running the Go initialisation over the layer set.
type goConfig struct {
	label   string
	cfg     lowrank.Config
	workers int
	threads int
}

// runGo initialises every layer and returns the wall time and each layer's
// window singular values.
func runGo(ls []layer, gc goConfig) (time.Duration, [][]float64, error) {
	lowrank.SetBLASThreads(gc.threads)
	src := lowrank.SliceSource[float32]{}
	for _, l := range ls {
		src.Names = append(src.Names, l.Name)
		src.Weights = append(src.Weights, l.w)
	}
	windows := make([][]float64, len(ls))
	start := time.Now()
	err := lowrank.InitLayers(context.Background(), src, gc.cfg, lowrank.BatchOptions{Workers: gc.workers, MaxInFlight: gc.workers},
		func(i int, a lowrank.Adapter[float32]) error {
			windows[i] = a.Singular
			return nil
		})
	return time.Since(start), windows, err
}

func maxRelDiff(a, b [][]float64) float64 {
	var worst float64
	for i := range a {
		for j := range a[i] {
			if d := math.Abs(a[i][j]-b[i][j]) / math.Abs(b[i][j]); d > worst {
				worst = d
			}
		}
	}
	return worst
}

func run(o options) error {
	if o.script == "" {
		_, file, _, _ := runtime.Caller(0)
		o.script = filepath.Join(filepath.Dir(file), "numpy_baseline.py")
	}
	if !lowrank.LAPACKAvailable() {
		return fmt.Errorf("built without cgo: the LAPACK back-end is what this benchmark measures")
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "bench-lowrank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ls := vitShapes(o.blocks)
	t0 := time.Now()
	if err := generate(ls, o.exponent, o.rank); err != nil {
		return err
	}
	if err := writeMatrices(ls, dir); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "generated %d float32 matrices (σ_i ∝ (1+i)^−%g) in %.1fs\n", len(ls), o.exponent, time.Since(t0).Seconds())

	cores := runtime.NumCPU()
	mid := lowrank.Config{Method: lowrank.MethodMid, Rank: o.rank, Alpha: float64(o.rank)}
	with := func(c lowrank.Config, svd string) lowrank.Config { c.SVD = svd; return c }
	defaultWorkers := 1
	var configs []goConfig
	configs = append(configs, goConfig{"prism mid, full SVD (default: auto strategy), 1 layer at a time × " + fmt.Sprint(cores) + " BLAS threads",
		with(mid, lowrank.SVDFull), defaultWorkers, cores})
	if o.variants {
		configs = append(configs,
			goConfig{"prism mid, thin SVD (sgesdd), 1 layer × " + fmt.Sprint(cores) + " threads", with(mid, lowrank.SVDThin), 1, cores},
			goConfig{"prism mid, thin SVD (sgesdd), " + fmt.Sprint(cores) + " layers × 1 thread", with(mid, lowrank.SVDThin), cores, 1},
			goConfig{"prism mid, window SVD (dgesvdx), 1 layer × " + fmt.Sprint(cores) + " threads", with(mid, lowrank.SVDWindowOnly), 1, cores},
			goConfig{"prism mid, window SVD (dgesvdx), " + fmt.Sprint(cores) + " layers × 1 thread", with(mid, lowrank.SVDWindowOnly), cores, 1},
		)
	}
	pissaFull := goConfig{"prism pissa, full SVD", lowrank.Config{Method: lowrank.MethodPiSSA, Rank: o.rank, Alpha: float64(o.rank), SVD: lowrank.SVDFull}, defaultWorkers, cores}
	pissaRand := goConfig{"prism pissa, randomized SVD", lowrank.Config{Method: lowrank.MethodPiSSA, Rank: o.rank, Alpha: float64(o.rank),
		SVD: lowrank.SVDRandomized, NIter: o.niter, Oversample: o.oversample, Seed: 1}, defaultWorkers, cores}
	configs = append(configs, pissaFull, pissaRand)

	best := map[string]time.Duration{}
	record := func(label string, d time.Duration) {
		if b, ok := best[label]; !ok || d < b {
			best[label] = d
		}
	}
	var npSVD, npInit numpyResult
	goWindows := map[string][][]float64{}
	for round := 1; round <= o.rounds; round++ {
		var d time.Duration
		var err error
		if npSVD, d, err = runNumpy(o, ls, dir, "svd", mid.Scale()); err != nil {
			return err
		}
		record("numpy svd", d)
		fmt.Fprintf(os.Stderr, "round %d: numpy.linalg.svd %8.2fs\n", round, d.Seconds())
		if npInit, d, err = runNumpy(o, ls, dir, "init", mid.Scale()); err != nil {
			return err
		}
		record("numpy init", d)
		fmt.Fprintf(os.Stderr, "round %d: numpy window init %7.2fs\n", round, d.Seconds())
		for _, gc := range configs {
			d, win, err := runGo(ls, gc)
			if err != nil {
				return fmt.Errorf("%s: %w", gc.label, err)
			}
			record(gc.label, d)
			goWindows[gc.label] = win
			fmt.Fprintf(os.Stderr, "round %d: %-70s %7.2fs\n", round, gc.label, d.Seconds())
		}
	}

	// Cross-checks: the mid window's σ from Go and numpy; randomized top-r vs exact.
	crossMid := maxRelDiff(goWindows[configs[0].label], npSVD.Windows)
	randErr := maxRelDiff(goWindows[pissaRand.label], goWindows[pissaFull.label])

	numpySVD := best["numpy svd"]
	fmt.Printf("\nbench-lowrank: %d layers (%d ViT-B blocks: 2304×768, 768×768, 3072×768, 768×3072), float32, r=%d, σ_i ∝ (1+i)^−%g\n",
		len(ls), o.blocks, o.rank, o.exponent)
	fmt.Printf("machine: %d CPUs (%s), %s; numpy %s on OpenBLAS; fastest of %d interleaved rounds\n\n",
		cores, cpuModel(), time.Now().Format("2006-01-02"), npSVD.Numpy, o.rounds)
	fmt.Printf("| %-78s | %9s | %8s | %12s |\n", "what", "total s", "ms/layer", "× numpy svd")
	fmt.Printf("|%s|%s|%s|%s|\n", strings.Repeat("-", 80), strings.Repeat("-", 11), strings.Repeat("-", 10), strings.Repeat("-", 14))
	row := func(label string) {
		d := best[label]
		fmt.Printf("| %-78s | %9.2f | %8.1f | %12.2f |\n", label, d.Seconds(), d.Seconds()*1000/float64(len(ls)), d.Seconds()/numpySVD.Seconds())
	}
	row("numpy svd")
	row("numpy init")
	for _, gc := range configs {
		row(gc.label)
	}
	full := best[configs[0].label]
	fmt.Printf("\nfull-SVD mid init (default) / numpy.linalg.svd: %.2f× (target ≤ 1.0×: %s)\n",
		full.Seconds()/numpySVD.Seconds(), verdict(full <= numpySVD))
	speedup := best[pissaFull.label].Seconds() / best[pissaRand.label].Seconds()
	fmt.Printf("randomized pissa speed-up over full pissa: %.1f× (target ≥ 10×: %s)\n", speedup, verdict(speedup >= 10))
	fmt.Printf("randomized pissa top-%d σ, max relative error vs exact: %.2g (target ≤ 1e-3: %s)\n",
		o.rank, randErr, verdict(randErr <= 1e-3))
	fmt.Printf("cross-check: mid-window σ, prism vs numpy, max relative difference %.2g\n", crossMid)
	_ = npInit
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

var _ = slices.Max[[]int]
