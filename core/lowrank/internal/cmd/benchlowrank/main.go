// Command benchlowrank times window initialisation of a ViT-B-shaped layer set
// (12 blocks × {2304×768, 768×768, 3072×768, 768×3072}, float32) with package
// lowrank against numpy.linalg.svd on the very same matrices, and randomized
// PiSSA initialisation against the full-SVD one. It prints one table.
//
// The matrices are generated deterministically (W = U·diag(σ)·Vᵀ, random
// orthonormal U and V, power-law σ_i = σ₁·(1+i)^−p), written as raw float32 to
// a temporary directory, and read there by numpy_baseline.py, run with the
// Debian interpreter (numpy on OpenBLAS, its default threads). Rounds are
// interleaved (numpy, then each Go configuration) and the fastest round of
// each contender is reported, so that load from other processes hits every
// contender alike; CPU seconds (all threads) are shown beside wall time.
//
//	go run ./core/lowrank/internal/cmd/benchlowrank [-rounds 3] [-blocks 12] [-exponent 0.5]
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/lowrank/lowranktest"
)

type options struct {
	blocks, rank, rounds int
	exponent             float64
	python, script, dir  string
	variants, numpyInit  bool
	torch                bool
}

func main() {
	var o options
	flag.IntVar(&o.blocks, "blocks", 12, "transformer blocks (4 matrices each)")
	flag.IntVar(&o.rank, "rank", 16, "adapter rank r")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds; the fastest of each contender is reported")
	flag.Float64Var(&o.exponent, "exponent", 0.5, "power-law exponent p of the generated spectra σ_i ∝ (1+i)^−p")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "interpreter with Debian's numpy (on OpenBLAS)")
	flag.StringVar(&o.script, "baseline-script", "", "baseline.py (default: next to this source file)")
	flag.StringVar(&o.dir, "dir", "", "directory for the generated matrices (default: a temporary one, removed)")
	flag.BoolVar(&o.variants, "variants", true, "also time each SVD strategy × parallelism variant and randomized settings")
	flag.BoolVar(&o.numpyInit, "numpy-init", true, "also time the whole window initialisation written in numpy")
	flag.BoolVar(&o.torch, "torch", true, "also time torch.linalg.svd (float32 sgesdd; Debian python3-torch)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-lowrank:", err)
		os.Exit(1)
	}
}

// layer is one generated weight and the file numpy reads it from.
type layer struct {
	Name  string `json:"name"`
	Rows  int    `json:"rows"`
	Cols  int    `json:"cols"`
	File  string `json:"file"`
	w     lowrank.Matrix[float32]
	start int // mid window start ⌊(k−r)/2⌋
}

func vitLayers(blocks int) []layer {
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

// generate fills each layer's weight, one goroutine per CPU, one BLAS thread each.
func generate(ls []layer, exponent float64, rank int) error {
	old := lowrank.BLASThreads()
	lowrank.SetBLASThreads(1)
	defer lowrank.SetBLASThreads(old)
	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	next := make(chan int)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				l := &ls[i]
				k := min(l.Rows, l.Cols)
				top := 1 + 0.5*math.Sin(float64(i)) // vary the scale across layers
				l.w, errs[i] = lowranktest.WithSpectrum[float32](l.Rows, l.Cols, lowranktest.PowerLawSpectrum(k, top, exponent), uint64(7919*i+1))
				l.start = (k - rank) / 2
			}
		}()
	}
	for i := range ls {
		next <- i
	}
	close(next)
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

// timing is one contender's wall and CPU time for the whole layer set.
type timing struct{ wall, cpu time.Duration }

type numpyResult struct {
	Seconds    []float64   `json:"seconds"`
	CPUSeconds []float64   `json:"cpu_seconds"`
	Windows    [][]float64 `json:"windows"`
	Version    string      `json:"version"`
}

func runNumpy(o options, ls []layer, dir, mode string, scale float64) (numpyResult, timing, error) {
	starts := make([]int, len(ls))
	for i, l := range ls {
		starts[i] = l.start
	}
	job, err := json.Marshal(map[string]any{"matrices": ls, "rank": o.rank, "scale": scale, "starts": starts, "mode": mode})
	if err != nil {
		return numpyResult{}, timing{}, err
	}
	jobPath := filepath.Join(dir, "job-"+mode+".json")
	resPath := filepath.Join(dir, "result-"+mode+".json")
	if err := os.WriteFile(jobPath, job, 0o644); err != nil {
		return numpyResult{}, timing{}, err
	}
	cmd := exec.Command(o.python, o.script, jobPath, resPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return numpyResult{}, timing{}, fmt.Errorf("%s %s (%s): %w (are python3-numpy and python3-torch installed? scripts/setup.sh bench)", o.python, o.script, mode, err)
	}
	data, err := os.ReadFile(resPath)
	if err != nil {
		return numpyResult{}, timing{}, err
	}
	var res numpyResult
	if err := json.Unmarshal(data, &res); err != nil {
		return numpyResult{}, timing{}, fmt.Errorf("reading %s: %w", resPath, err)
	}
	var t timing
	for i := range res.Seconds {
		t.wall += time.Duration(res.Seconds[i] * float64(time.Second))
		t.cpu += time.Duration(res.CPUSeconds[i] * float64(time.Second))
	}
	return res, t, nil
}

// goConfig is one way of running the Go initialisation over the layer set.
type goConfig struct {
	label            string
	cfg              lowrank.Config
	workers, threads int // BatchOptions; 0 = InitLayers' defaults
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runGo initialises every layer and returns the time taken and each layer's
// window singular values.
func runGo(ls []layer, gc goConfig) (timing, [][]float64, error) {
	src := lowrank.SliceSource[float32]{}
	for _, l := range ls {
		src.Names = append(src.Names, l.Name)
		src.Weights = append(src.Weights, l.w)
	}
	windows := make([][]float64, len(ls))
	runtime.GC()
	c0, t0 := cpuTime(), time.Now()
	err := lowrank.InitLayers(context.Background(), src, gc.cfg,
		lowrank.BatchOptions{Workers: gc.workers, BLASThreads: gc.threads},
		func(i int, a lowrank.Adapter[float32]) error {
			windows[i] = a.Singular
			return nil
		})
	return timing{time.Since(t0), cpuTime() - c0}, windows, err
}

func maxRelDiff(a, b [][]float64) float64 {
	var worst float64
	for i := range a {
		for j := range a[i] {
			worst = max(worst, math.Abs(a[i][j]-b[i][j])/math.Abs(b[i][j]))
		}
	}
	return worst
}

func run(o options) error {
	if o.script == "" {
		_, file, _, _ := runtime.Caller(0)
		o.script = filepath.Join(filepath.Dir(file), "baseline.py")
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
	ls := vitLayers(o.blocks)
	t0 := time.Now()
	if err := generate(ls, o.exponent, o.rank); err != nil {
		return err
	}
	if err := writeMatrices(ls, dir); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "generated %d float32 matrices (σ_i ∝ (1+i)^−%g) in %.1fs\n", len(ls), o.exponent, time.Since(t0).Seconds())

	cores := runtime.NumCPU()
	r := o.rank
	alpha := float64(r)
	mid := func(svd string) lowrank.Config {
		return lowrank.Config{Method: lowrank.MethodMid, Rank: r, Alpha: alpha, SVD: svd}
	}
	pissa := func(svd, algo string, niter, over int) lowrank.Config {
		return lowrank.Config{Method: lowrank.MethodPiSSA, Rank: r, Alpha: alpha, SVD: svd, Randomized: algo, NIter: niter, Oversample: over, Seed: 1}
	}
	par := fmt.Sprintf("%d layers × 1 thread", cores)
	seq := fmt.Sprintf("1 layer × %d threads", cores)
	midDefault := goConfig{"prism mid, exact SVD, defaults (dgesvdx window, " + par + ")", mid(lowrank.SVDFull), 0, 0}
	midThin := goConfig{"prism mid, full thin SVD (sgesdd, as torch), " + par, mid(lowrank.SVDThin), cores, 1}
	pissaFull := goConfig{"prism pissa, full thin SVD (sgesdd), " + par, pissa(lowrank.SVDThin, "", 0, 0), cores, 1}
	pissaWindow := goConfig{"prism pissa, window SVD (dgesvdx: the fastest exact path), " + par, pissa(lowrank.SVDWindowOnly, "", 0, 0), cores, 1}
	randLabel := func(algo string, niter, over int) string {
		if algo == lowrank.RandomizedSubspace {
			return fmt.Sprintf("prism pissa, randomized SVD (subspace iteration, niter %d, oversample %d), %s", niter, over, par)
		}
		return fmt.Sprintf("prism pissa, randomized SVD (block Krylov, niter %d, oversample %d), %s", niter, over, par)
	}
	pissaRand := goConfig{randLabel(lowrank.RandomizedKrylov, lowrank.DefaultNIter, lowrank.DefaultOversample) + " [default]",
		pissa(lowrank.SVDRandomized, "", 0, 0), cores, 1}
	configs := []goConfig{midDefault, midThin}
	if o.variants {
		configs = append(configs,
			goConfig{"prism mid, full thin SVD (sgesdd), " + seq, mid(lowrank.SVDThin), 1, cores},
			goConfig{"prism mid, window SVD (dgesvdx), " + seq, mid(lowrank.SVDWindowOnly), 1, cores},
		)
	}
	configs = append(configs, pissaFull, pissaWindow, pissaRand)
	var randVariants []goConfig
	if o.variants {
		for _, v := range []struct {
			algo        string
			niter, over int
		}{
			{lowrank.RandomizedKrylov, 4, -1}, {lowrank.RandomizedKrylov, 6, -1}, {lowrank.RandomizedKrylov, 4, 8},
			{lowrank.RandomizedSubspace, lowrank.DefaultSubspaceNIter, lowrank.DefaultSubspaceOversample}, {lowrank.RandomizedSubspace, 2, 16},
		} {
			randVariants = append(randVariants, goConfig{randLabel(v.algo, v.niter, max(v.over, 0)),
				pissa(lowrank.SVDRandomized, v.algo, v.niter, v.over), cores, 1})
		}
		configs = append(configs, randVariants...)
	}

	best := map[string]timing{}
	record := func(label string, t timing) {
		b, ok := best[label]
		if !ok || t.wall < b.wall {
			b.wall = t.wall
		}
		if !ok || t.cpu < b.cpu {
			b.cpu = t.cpu
		}
		best[label] = b
	}
	const (
		npSVDLabel    = "numpy.linalg.svd (float32 in, computed in double: dgesdd)"
		npInitLabel   = "numpy mid init (svd + A, B, Wres)"
		torchSVDLabel = "torch.linalg.svd (float32: sgesdd)"
	)
	var npSVD numpyResult
	torchVersion := ""
	goWindows := map[string][][]float64{}
	for round := 1; round <= o.rounds; round++ {
		res, t, err := runNumpy(o, ls, dir, "numpy-svd", mid("").Scale())
		if err != nil {
			return err
		}
		npSVD = res
		record(npSVDLabel, t)
		fmt.Fprintf(os.Stderr, "round %d: %-88s %7.2fs wall %7.2fs CPU\n", round, npSVDLabel, t.wall.Seconds(), t.cpu.Seconds())
		if o.numpyInit {
			_, t, err := runNumpy(o, ls, dir, "numpy-init", mid("").Scale())
			if err != nil {
				return err
			}
			record(npInitLabel, t)
			fmt.Fprintf(os.Stderr, "round %d: %-88s %7.2fs wall %7.2fs CPU\n", round, npInitLabel, t.wall.Seconds(), t.cpu.Seconds())
		}
		if o.torch {
			res, t, err := runNumpy(o, ls, dir, "torch-svd", mid("").Scale())
			if err != nil {
				return err
			}
			torchVersion = res.Version
			record(torchSVDLabel, t)
			fmt.Fprintf(os.Stderr, "round %d: %-88s %7.2fs wall %7.2fs CPU\n", round, torchSVDLabel, t.wall.Seconds(), t.cpu.Seconds())
		}
		for _, gc := range configs {
			t, win, err := runGo(ls, gc)
			if err != nil {
				return fmt.Errorf("%s: %w", gc.label, err)
			}
			record(gc.label, t)
			goWindows[gc.label] = win
			fmt.Fprintf(os.Stderr, "round %d: %-88s %7.2fs wall %7.2fs CPU\n", round, gc.label, t.wall.Seconds(), t.cpu.Seconds())
		}
	}

	np := best[npSVDLabel]
	fmt.Printf("\nbench-lowrank: %d layers (%d ViT-B blocks × 2304×768, 768×768, 3072×768, 768×3072), float32, r=%d, α=r, σ_i ∝ (1+i)^−%g\n",
		len(ls), o.blocks, r, o.exponent)
	fmt.Printf("machine: %d CPUs (%s), %s, load average at the end %s; %s, %s; OpenBLAS %s; fastest of %d interleaved rounds\n\n",
		cores, cpuModel(), time.Now().Format("2006-01-02 15:04 MST"), loadAverage(), npSVD.Version, torchVersion, openblasVersion(), o.rounds)
	fmt.Printf("| %-88s | %7s | %7s | %8s | %8s |\n", "what (whole layer set)", "wall s", "CPU s", "× numpy", "× numpy")
	fmt.Printf("| %-88s | %7s | %7s | %8s | %8s |\n", "", "", "", "(wall)", "(CPU)")
	fmt.Printf("|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 90), strings.Repeat("-", 9), strings.Repeat("-", 9), strings.Repeat("-", 10), strings.Repeat("-", 10))
	row := func(label string) {
		t := best[label]
		fmt.Printf("| %-88s | %7.2f | %7.2f | %8.2f | %8.2f |\n", label, t.wall.Seconds(), t.cpu.Seconds(),
			t.wall.Seconds()/np.wall.Seconds(), t.cpu.Seconds()/np.cpu.Seconds())
	}
	row(npSVDLabel)
	if o.numpyInit {
		row(npInitLabel)
	}
	if o.torch {
		row(torchSVDLabel)
	}
	for _, gc := range configs {
		row(gc.label)
	}

	fmt.Println()
	for _, gc := range []goConfig{midDefault, midThin} {
		t := best[gc.label]
		fmt.Printf("full-SVD mid init / numpy.linalg.svd: %.2f× wall, %.2f× CPU — %s (target ≤ 1.0×: %s)\n",
			t.wall.Seconds()/np.wall.Seconds(), t.cpu.Seconds()/np.cpu.Seconds(), gc.label, verdict(t.wall <= np.wall))
	}
	full, window, rnd := best[pissaFull.label], best[pissaWindow.label], best[pissaRand.label]
	randErr := maxRelDiff(goWindows[pissaRand.label], goWindows[pissaFull.label])
	fmt.Printf("randomized pissa vs full-SVD pissa (sgesdd): %.1f× faster wall, %.1f× CPU (target ≥ 10×: %s); top-%d σ max relative error %.2g (target ≤ 1e-3: %s)\n",
		full.wall.Seconds()/rnd.wall.Seconds(), full.cpu.Seconds()/rnd.cpu.Seconds(), verdict(full.wall >= 10*rnd.wall && full.cpu >= 10*rnd.cpu),
		r, randErr, verdict(randErr <= 1e-3))
	fmt.Printf("randomized pissa vs the fastest exact pissa (dgesvdx of the window only): %.1f× faster wall, %.1f× CPU\n",
		window.wall.Seconds()/rnd.wall.Seconds(), window.cpu.Seconds()/rnd.cpu.Seconds())
	for _, v := range randVariants {
		t := best[v.label]
		fmt.Printf("  %s: %.1f× faster wall, %.1f× CPU than sgesdd; top-%d σ max relative error %.2g\n", strings.TrimPrefix(v.label, "prism pissa, "),
			full.wall.Seconds()/t.wall.Seconds(), full.cpu.Seconds()/t.cpu.Seconds(), r,
			maxRelDiff(goWindows[v.label], goWindows[pissaFull.label]))
	}
	fmt.Printf("cross-check: mid-window σ vs numpy (double), max relative difference: prism default (dgesvdx) %.2g, prism sgesdd %.2g\n",
		maxRelDiff(goWindows[midDefault.label], npSVD.Windows), maxRelDiff(goWindows[midThin.label], npSVD.Windows))
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

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// openblasVersion reads the version of the OpenBLAS behind the system LAPACK.
func openblasVersion() string {
	target, err := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/liblapack.so.3")
	if err != nil {
		return "?"
	}
	lib, err := os.Readlink(filepath.Join(filepath.Dir(target), "libopenblas.so.0"))
	if err != nil {
		return "? (" + target + ")"
	}
	return strings.TrimSuffix(strings.TrimPrefix(lib, "libopenblasp-r"), ".so")
}
