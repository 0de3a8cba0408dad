package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

// lowrankInitOptions are the inputs of `prism lowrank init`.
type lowrankInitOptions struct {
	In, Out       string
	Method        string  // lora | pissa | milora | mid | window | olora
	Rank          int     // r ≥ 1
	Start         int     // window start s (method window)
	StartSet      bool    // --start given
	Fraction      float64 // window start as a fraction of k−r (method window)
	FractionSet   bool    // --fraction given
	Alpha         float64 // 0: α = r
	RSLoRA        bool
	Targets       string // regular expression over whole tensor names; "" = all
	SVD           string // full | randomized
	Randomized    string // randomized SVD algorithm: krylov | subspace
	NIter         int    // randomized: Krylov steps or power iterations
	NIterSet      bool   // --niter given
	Oversample    int    // randomized: extra block columns
	OversampleSet bool   // --oversample given
	Seed          uint64
	Workers       int    // layers decomposed at once; 0 = automatic
	Progress      string // auto | always | never
	Stdout        io.Writer
	Stderr        io.Writer
}

func newLowrankInitCmd() *cobra.Command {
	o := lowrankInitOptions{SVD: lowrank.SVDFull, Randomized: lowrank.RandomizedKrylov, NIter: lowrank.DefaultNIter,
		Oversample: lowrank.DefaultOversample, Progress: progressAuto}
	cmd := &cobra.Command{
		Use:   "init --in W.safetensors --out adapters.safetensors --method M --rank R [flags]",
		Short: "Initialise low-rank adapters for every targeted 2-D weight of a safetensors file",
		Long: `For every targeted 2-D tensor NAME of shape [out, in] (W, m×n) this writes

  NAME.lora_A  [r, in]    A
  NAME.lora_B  [out, r]   B
  NAME.base    [out, in]  Wres = W − scale·B·A   (the frozen residual)

so that W = Wres + scale·B·A exactly (to rounding; the command checks it and prints the
relative error for every layer). scale = α/r, or α/√r with --rslora.

Methods, with the thin SVD W = U·diag(S)·Vᵀ and a window of r components starting at s:
  pissa    s = 0            (the top r singular components)
  milora   s = k − r        (the bottom r; k = min(m, n))
  mid      s = ⌊(k − r)/2⌋  (the middle of the spectrum)
  window   s from --start S, or --fraction F: s = round(F·(k − r))
  lora     A Kaiming-uniform, B = 0, Wres = W (no SVD)
  olora    W = Q·R, B = Q[:, :r], A = R[:r, :]
For window methods B = U[:, s:s+r]·diag(√(S[s:s+r]/scale)) and A = diag(√(S[s:s+r]/scale))·Vᵀ[s:s+r, :].

Output tensors have the input's dtype (F32 or F64). F16 and BF16 weights are widened exactly
to float32, decomposed in float32 and written as F32 (metadata input_dtype.NAME records it).
Tensors that are not 2-D, not floats, or have fewer than r singular values are skipped and
listed, unless --targets names them exactly, which is an error. A NaN or Inf in a weight is
an error naming the tensor. __metadata__ records method, window, rank, alpha, scale, rslora,
svd, seed, the layers, and start (the most common window start) with start.NAME for every
layer whose start differs. The output is written atomically: on any error no file appears.`,
		Example: `  prism lowrank init --in vit.safetensors --out mid.safetensors --method mid --rank 16
  prism lowrank init --in vit.safetensors --out w.safetensors --method window --fraction 0.25 --rank 8 \
      --targets '.*\.attn\.(qkv|proj)\.weight'
  prism lowrank init --in llm.safetensors --out pissa.safetensors --method pissa --rank 64 \
      --svd randomized --niter 6`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			o.StartSet, o.FractionSet, o.NIterSet = f.Changed("start"), f.Changed("fraction"), f.Changed("niter")
			o.OversampleSet = f.Changed("oversample")
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runLowrankInit(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.In, "in", "", "input safetensors file holding the weights (required)")
	f.StringVar(&o.Out, "out", "", "output safetensors file for the adapters (required; written atomically)")
	f.StringVar(&o.Method, "method", o.Method, "initialisation (required): lora, pissa, milora, mid, window or olora")
	f.IntVar(&o.Rank, "rank", 0, "adapter rank r ≥ 1 (required)")
	f.IntVar(&o.Start, "start", 0, "window start s ≥ 0, index into the descending singular values (--method window)")
	f.Float64Var(&o.Fraction, "fraction", 0, "window start as a fraction F ∈ [0, 1] of the spectrum, s = round(F·(k−r)) (--method window)")
	f.Float64Var(&o.Alpha, "alpha", 0, "LoRA alpha α > 0; scale = α/r (α/√r with --rslora); default α = r")
	f.BoolVar(&o.RSLoRA, "rslora", false, "use the rank-stabilised scale α/√r instead of α/r")
	f.StringVar(&o.Targets, "targets", "", "regular expression a tensor's whole name must match (default: every 2-D tensor); plain names joined by | select exactly those tensors")
	f.StringVar(&o.SVD, "svd", o.SVD, "SVD for window methods: full (exact) or randomized (top s+r components, fast when s+r ≪ k)")
	f.StringVar(&o.Randomized, "randomized", o.Randomized, "randomized SVD algorithm (--svd randomized): krylov (randomized block Krylov) or subspace (Halko–Martinsson–Tropp power iteration)")
	f.IntVar(&o.NIter, "niter", o.NIter, fmt.Sprintf("randomized SVD iterations (--svd randomized): Krylov steps, 2·niter+1 products with W (subspace: power iterations, default %d)", lowrank.DefaultSubspaceNIter))
	f.IntVar(&o.Oversample, "oversample", o.Oversample, fmt.Sprintf("randomized SVD extra block columns beyond s+r (--svd randomized; subspace default %d)", lowrank.DefaultSubspaceOversample))
	f.Uint64Var(&o.Seed, "seed", 0, "seed for the randomized SVD and for LoRA's random A")
	f.IntVar(&o.Workers, "workers", 0, "layers decomposed at once (0: one per CPU, each with a single-threaded BLAS)")
	f.StringVar(&o.Progress, "progress", o.Progress, "progress on stderr: auto (only on a terminal), always or never")
	return cmd
}

// validate checks the options and returns the lowrank configuration.
func (o lowrankInitOptions) validate() (lowrank.Config, error) {
	c := lowrank.Config{Method: o.Method, Rank: o.Rank, Alpha: o.Alpha, RSLoRA: o.RSLoRA, SVD: o.SVD, Seed: o.Seed}
	o.Randomized = cmp.Or(o.Randomized, lowrank.RandomizedKrylov)
	switch {
	case o.In == "":
		return c, fmt.Errorf("--in is required: the safetensors file holding the weights")
	case o.Out == "":
		return c, fmt.Errorf("--out is required: the safetensors file to write the adapters to")
	case samePath(o.In, o.Out):
		return c, fmt.Errorf("--out %s is the input file; choose another path", o.Out)
	case o.Method == "":
		return c, fmt.Errorf("--method is required: lora, pissa, milora, mid, window or olora")
	case !slices.Contains(lowrank.Methods, o.Method):
		return c, fmt.Errorf("--method %q is unknown (expected lora, pissa, milora, mid, window or olora)", o.Method)
	case o.Rank < 1:
		return c, fmt.Errorf("--rank must be an integer ≥ 1 (got %d)", o.Rank)
	case o.Alpha < 0 || math.IsNaN(o.Alpha) || math.IsInf(o.Alpha, 0):
		return c, fmt.Errorf("--alpha must be a positive number (got %v)", o.Alpha)
	case o.SVD != lowrank.SVDFull && o.SVD != lowrank.SVDRandomized:
		return c, fmt.Errorf("--svd must be full or randomized (got %q)", o.SVD)
	case o.NIterSet && o.SVD != lowrank.SVDRandomized:
		return c, fmt.Errorf("--niter applies only with --svd randomized")
	case o.OversampleSet && o.SVD != lowrank.SVDRandomized:
		return c, fmt.Errorf("--oversample applies only with --svd randomized")
	case o.NIter < 0:
		return c, fmt.Errorf("--niter must be ≥ 0 (got %d)", o.NIter)
	case o.Oversample < 0:
		return c, fmt.Errorf("--oversample must be ≥ 0 (got %d)", o.Oversample)
	case o.Randomized != lowrank.RandomizedKrylov && o.Randomized != lowrank.RandomizedSubspace:
		return c, fmt.Errorf("--randomized must be krylov or subspace (got %q)", o.Randomized)
	case o.Randomized != lowrank.RandomizedKrylov && o.SVD != lowrank.SVDRandomized:
		return c, fmt.Errorf("--randomized applies only with --svd randomized")
	case o.Workers < 0:
		return c, fmt.Errorf("--workers must be ≥ 0 (got %d)", o.Workers)
	case o.StartSet && o.FractionSet:
		return c, fmt.Errorf("--start and --fraction both give the window start; use one")
	}
	if err := checkProgressMode(o.Progress); err != nil {
		return c, err
	}
	if o.Method == lowrank.MethodWindow {
		switch {
		case o.StartSet:
			if o.Start < 0 {
				return c, fmt.Errorf("--start must be ≥ 0 (got %d)", o.Start)
			}
			c.Window = lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: o.Start}
		case o.FractionSet:
			if !(o.Fraction >= 0 && o.Fraction <= 1) {
				return c, fmt.Errorf("--fraction must be in [0, 1] (got %v)", o.Fraction)
			}
			c.Window = lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: o.Fraction}
		default:
			return c, fmt.Errorf("--method window needs the window start: --start S or --fraction F")
		}
	} else if o.StartSet || o.FractionSet {
		flag := "--start"
		if o.FractionSet {
			flag = "--fraction"
		}
		return c, fmt.Errorf("%s applies only to --method window (--method %s fixes its own window)", flag, o.Method)
	}
	if o.SVD == lowrank.SVDRandomized {
		c.Randomized, c.NIter, c.Oversample = o.Randomized, o.NIter, o.Oversample
		if o.Randomized == lowrank.RandomizedSubspace {
			if !o.NIterSet {
				c.NIter = lowrank.DefaultSubspaceNIter
			}
			if !o.OversampleSet {
				c.Oversample = lowrank.DefaultSubspaceOversample
			}
		}
		// lowrank: 0 means the algorithm's default, < 0 means none.
		if c.NIter == 0 {
			c.NIter = -1
		}
		if c.Oversample == 0 {
			c.Oversample = -1
		}
	}
	return c, nil
}

// windowText describes the window the method uses, for the metadata.
func windowText(c lowrank.Config) string {
	switch c.Method {
	case lowrank.MethodWindow:
		return c.Window.String()
	case lowrank.MethodLoRA, lowrank.MethodOLoRA:
		return "none"
	}
	return c.Method
}

// initLayer is one targeted weight and what will be written for it.
type initLayer struct {
	info     safetensors.Info
	start    int
	compute  safetensors.DType // F32 or F64
	identity float64           // ‖W − (Wres + scale·B·A)‖/‖W‖, once done
	first    float64           // σ_s (window methods)
	last     float64           // σ_{s+r−1}
}

func runLowrankInit(ctx context.Context, o lowrankInitOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	c, err := o.validate()
	if err != nil {
		return err
	}
	sel, err := parseTargets(o.Targets)
	if err != nil {
		return err
	}
	began := time.Now()
	r, err := safetensors.Open(o.In)
	if err != nil {
		return err
	}
	defer r.Close()

	targets, skipped, err := selectMatrices(r, sel, func(m, n int) string {
		if k := min(m, n); o.Rank > k {
			return fmt.Sprintf("rank %d exceeds its %d singular values (shape %s)", o.Rank, k, shapeText(m, n))
		}
		return ""
	})
	if err != nil {
		return err
	}
	layers := make([]*initLayer, len(targets))
	var specs []safetensors.Spec
	for i, t := range targets {
		m, n := t.Shape[0], t.Shape[1]
		start := 0
		if c.Method != lowrank.MethodLoRA && c.Method != lowrank.MethodOLoRA {
			window := c.Window
			if c.Method != lowrank.MethodWindow {
				window = lowrank.WindowSpec{Preset: c.Method}
			}
			if start, err = window.Resolve(t.Name, m, n, c.Rank); err != nil {
				return fmt.Errorf("tensor %q of %s: %w", t.Name, o.In, err)
			}
		}
		dt := computeType(t.DType)
		layers[i] = &initLayer{info: t, start: start, compute: dt}
		specs = append(specs,
			safetensors.Spec{Name: t.Name + ".lora_A", DType: dt, Shape: []int{c.Rank, n}},
			safetensors.Spec{Name: t.Name + ".lora_B", DType: dt, Shape: []int{m, c.Rank}},
			safetensors.Spec{Name: t.Name + ".base", DType: dt, Shape: []int{m, n}})
	}

	fw, err := safetensors.Create(o.Out, specs, initMetadata(o, c, layers))
	if err != nil {
		return err
	}
	defer fw.Abort()

	progress := newProgressLine(o.Stderr, o.Progress)
	var done int
	var doneMu sync.Mutex
	report := func(p lowrank.Progress) {
		doneMu.Lock()
		done++
		d := done
		doneMu.Unlock()
		progress.show(d, len(layers), p.Layer, time.Since(began))
	}
	batch := lowrank.BatchOptions{Workers: o.Workers, Progress: report}
	var group32, group64 []*initLayer
	for _, l := range layers {
		if l.compute == safetensors.F64 {
			group64 = append(group64, l)
		} else {
			group32 = append(group32, l)
		}
	}
	if err := initGroup[float32](ctx, r, group32, c, batch, fw); err != nil {
		progress.clear()
		return err
	}
	if err := initGroup[float64](ctx, r, group64, c, batch, fw); err != nil {
		progress.clear()
		return err
	}
	progress.clear()
	if err := fw.Commit(); err != nil {
		return err
	}
	printInitReport(o, c, layers, skipped, time.Since(began))
	return nil
}

// initMetadata is the output's __metadata__ (all strings, as the format requires).
func initMetadata(o lowrankInitOptions, c lowrank.Config, layers []*initLayer) map[string]string {
	meta := map[string]string{
		"format":  "prism.lowrank",
		"method":  c.Method,
		"window":  windowText(c),
		"rank":    strconv.Itoa(c.Rank),
		"alpha":   strconv.FormatFloat(alphaOf(c), 'g', -1, 64),
		"scale":   strconv.FormatFloat(c.Scale(), 'g', -1, 64),
		"rslora":  strconv.FormatBool(c.RSLoRA),
		"svd":     c.SVD,
		"seed":    strconv.FormatUint(c.Seed, 10),
		"source":  filepath.Base(o.In),
		"tensors": "NAME.lora_A [r, in], NAME.lora_B [out, r], NAME.base [out, in]: W = base + scale·lora_B·lora_A",
	}
	if c.SVD == lowrank.SVDRandomized {
		meta["randomized"] = c.Randomized
		meta["niter"] = strconv.Itoa(max(c.NIter, 0))
		meta["oversample"] = strconv.Itoa(max(c.Oversample, 0))
	}
	names := make([]string, len(layers))
	counts := map[int]int{}
	for i, l := range layers {
		names[i] = l.info.Name
		counts[l.start]++
		if l.info.DType != l.compute {
			meta["input_dtype."+l.info.Name] = string(l.info.DType)
		}
	}
	list, _ := json.Marshal(names)
	meta["layers"] = string(list)
	common := layers[0].start
	for s, n := range counts {
		if n > counts[common] || (n == counts[common] && s < common) {
			common = s
		}
	}
	meta["start"] = strconv.Itoa(common)
	for _, l := range layers {
		if l.start != common {
			meta["start."+l.info.Name] = strconv.Itoa(l.start)
		}
	}
	return meta
}

func alphaOf(c lowrank.Config) float64 {
	if c.Alpha == 0 {
		return float64(c.Rank)
	}
	return c.Alpha
}

// fileLayers is a lowrank.LayerSource reading the targeted weights of a
// safetensors file one at a time. It keeps each weight until its adapter
// has been checked against it (InitLayers bounds how many are in flight).
type fileLayers[T lowrank.Float] struct {
	r       *safetensors.Reader
	layers  []*initLayer
	mu      sync.Mutex
	weights map[int]lowrank.Matrix[T]
}

func (s *fileLayers[T]) Len() int          { return len(s.layers) }
func (s *fileLayers[T]) Name(i int) string { return s.layers[i].info.Name }

func (s *fileLayers[T]) Load(_ context.Context, i int) (lowrank.Matrix[T], error) {
	name := s.layers[i].info.Name
	w, err := safetensors.ReadMatrix[T](s.r, name)
	if err != nil {
		return w, err
	}
	if err := checkFinite(s.r.Name(), name, w); err != nil {
		return w, err
	}
	s.mu.Lock()
	s.weights[i] = w
	s.mu.Unlock()
	return w, nil
}

// take returns and forgets layer i's weight.
func (s *fileLayers[T]) take(i int) lowrank.Matrix[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.weights[i]
	delete(s.weights, i)
	return w
}

// checkFinite reports the first NaN or ±Inf of w, naming the tensor.
func checkFinite[T lowrank.Float](file, name string, w lowrank.Matrix[T]) error {
	for idx, v := range w.Data {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("tensor %q of %s has a non-finite value %v at [%d, %d]; fix the weights first",
				name, file, f, idx/w.Cols, idx%w.Cols)
		}
	}
	return nil
}

// initGroup initialises the layers computed in precision T and puts their
// A, B and Wres into fw as each finishes.
func initGroup[T lowrank.Float](ctx context.Context, r *safetensors.Reader, layers []*initLayer,
	c lowrank.Config, batch lowrank.BatchOptions, fw *safetensors.FileWriter) error {
	if len(layers) == 0 {
		return nil
	}
	src := &fileLayers[T]{r: r, layers: layers, weights: map[int]lowrank.Matrix[T]{}}
	return lowrank.InitLayers[T](ctx, src, c, batch, func(i int, a lowrank.Adapter[T]) error {
		l := layers[i]
		w := src.take(i)
		if a.Start != l.start {
			return fmt.Errorf("window start %d differs from the %d recorded in the metadata", a.Start, l.start)
		}
		l.identity = relIdentityError(w, a)
		if len(a.Singular) > 0 {
			l.first, l.last = a.Singular[0], a.Singular[len(a.Singular)-1]
		}
		name := l.info.Name
		for _, t := range []safetensors.Tensor{
			safetensors.FromMatrix(name+".lora_A", a.A),
			safetensors.FromMatrix(name+".lora_B", a.B),
			safetensors.FromMatrix(name+".base", a.Base),
		} {
			if err := fw.Put(t); err != nil {
				return err
			}
		}
		return nil
	})
}

func printInitReport(o lowrankInitOptions, c lowrank.Config, layers []*initLayer, skipped []skippedTensor, elapsed time.Duration) {
	w := o.Stdout
	fmt.Fprintf(w, "%s → %s: method %s, window %s, rank %d, alpha %g, scale %g, svd %s\n",
		o.In, o.Out, c.Method, windowText(c), c.Rank, alphaOf(c), c.Scale(), c.SVD)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tshape\tdtype\tstart\tσ_s … σ_s+r−1\t‖W−(Wres+scale·B·A)‖/‖W‖")
	worst := 0.0
	for _, l := range layers {
		sigma := "-"
		if l.first != 0 || l.last != 0 {
			sigma = fmt.Sprintf("%.4g … %.4g", l.first, l.last)
		}
		dtype := string(l.compute)
		if l.info.DType != l.compute {
			dtype = fmt.Sprintf("%s→%s", l.info.DType, l.compute)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.2e\n", l.info.Name, shapeText(l.info.Shape[0], l.info.Shape[1]),
			dtype, l.start, sigma, l.identity)
		worst = max(worst, l.identity)
	}
	tw.Flush()
	size := int64(0)
	if st, err := os.Stat(o.Out); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(w, "wrote %d tensors for %d layers (%.1f MB) in %.2fs; worst identity error %.2e\n",
		3*len(layers), len(layers), float64(size)/1e6, elapsed.Seconds(), worst)
	printSkipped(w, skipped)
}
