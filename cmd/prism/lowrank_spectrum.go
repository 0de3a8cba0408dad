package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
	"github.com/prism-lora/prism/internal/atomicfile"
)

// lowrankSpectrumOptions are the inputs of `prism lowrank spectrum`.
type lowrankSpectrumOptions struct {
	In       string
	CSV      string // path for every singular value; "" = none
	Targets  string // regular expression over whole tensor names; "" = all
	TopK     []int  // energy captured by the top k values, for each k
	Workers  int    // tensors decomposed at once; 0 = automatic
	Progress string // auto | always | never
	Stdout   io.Writer
	Stderr   io.Writer
}

func newLowrankSpectrumCmd() *cobra.Command {
	o := lowrankSpectrumOptions{TopK: []int{8, 16, 64}, Progress: progressAuto}
	cmd := &cobra.Command{
		Use:   "spectrum --in W.safetensors [--csv out.csv]",
		Short: "Summarise the singular values of every 2-D weight of a safetensors file",
		Long: `For every 2-D float tensor W (shape [out, in], m×n) prints its shape, dtype, k = min(m, n),
numerical rank, and a summary of its singular values σ₁ ≥ … ≥ σ_k:

  σmax, σmin, median    the largest, smallest and median singular value
  cond                  σmax/σmin (+Inf when σmin = 0)
  E@K                   energy captured by the top K components, Σ_{i≤K} σᵢ² / Σ σᵢ²
                        (the fraction of ‖W‖²_F that a rank-K PiSSA window holds)

The numerical rank counts σᵢ > tol with tol = max(m, n)·ε·σmax, where ε is the machine epsilon
of the precision the SVD ran in: 2⁻²³ ≈ 1.19e-7 for F32 (and for F16/BF16, widened exactly to
float32), 2⁻⁵² ≈ 2.22e-16 for F64 — the convention of numpy.linalg.matrix_rank.

--csv writes every singular value, one row per (tensor, index):
  tensor,rows,cols,index,singular_value,cumulative_energy
Tensors that are not 2-D or not floats are skipped and listed.`,
		Example: `  prism lowrank spectrum --in vit.safetensors
  prism lowrank spectrum --in vit.safetensors --targets '.*attn.*' --csv spectra.csv --top-k 4,32`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runLowrankSpectrum(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.In, "in", "", "input safetensors file (required)")
	f.StringVar(&o.CSV, "csv", "", "also write every singular value to this CSV file")
	f.StringVar(&o.Targets, "targets", "", "regular expression a tensor's whole name must match (default: every 2-D tensor)")
	f.IntSliceVar(&o.TopK, "top-k", o.TopK, "report the energy captured by the top K singular values, for each K (comma-separated, each ≥ 1)")
	f.IntVar(&o.Workers, "workers", 0, "tensors decomposed at once (0: one per CPU, or 1 when BLAS is multi-threaded)")
	f.StringVar(&o.Progress, "progress", o.Progress, "progress on stderr: auto (only on a terminal), always or never")
	return cmd
}

// spectrumSummary is the analysis of one tensor's singular values.
type spectrumSummary struct {
	info      safetensors.Info
	compute   safetensors.DType
	values    []float64 // σ₁ ≥ … ≥ σ_k
	tolerance float64   // max(m,n)·ε·σmax
	rank      int       // #σ > tolerance
}

func (s spectrumSummary) energyTop(k int) float64 { return energyFraction(s.values, k) }

// energyFraction is Σ_{i<k} σᵢ² / Σ σᵢ² (1 for an all-zero spectrum).
func energyFraction(values []float64, k int) float64 {
	var top, total float64
	for i, v := range values {
		if i < k {
			top += v * v
		}
		total += v * v
	}
	if total == 0 {
		return 1
	}
	return top / total
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// machineEpsilon is the spacing of 1 in the precision an SVD ran in.
func machineEpsilon(d safetensors.DType) float64 {
	if d == safetensors.F64 {
		return math.Ldexp(1, -52)
	}
	return math.Ldexp(1, -23)
}

// singularValues reads one tensor and returns its singular values
// (descending) in the tensor's compute precision.
func singularValues(r *safetensors.Reader, t safetensors.Info) ([]float64, error) {
	if computeType(t.DType) == safetensors.F64 {
		return singularValuesAs[float64](r, t.Name)
	}
	return singularValuesAs[float32](r, t.Name)
}

func singularValuesAs[T lowrank.Float](r *safetensors.Reader, name string) ([]float64, error) {
	w, err := safetensors.ReadMatrix[T](r, name)
	if err != nil {
		return nil, err
	}
	if err := checkFinite(r.Name(), name, w); err != nil {
		return nil, err
	}
	f, err := lowrank.ThinSVD(w)
	if err != nil {
		return nil, fmt.Errorf("tensor %q of %s: %w", name, r.Name(), err)
	}
	values := make([]float64, len(f.S))
	for i, v := range f.S {
		values[i] = float64(v)
	}
	return values, nil
}

func runLowrankSpectrum(ctx context.Context, o lowrankSpectrumOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	switch {
	case o.In == "":
		return fmt.Errorf("--in is required: the safetensors file to analyse")
	case o.CSV != "" && samePath(o.In, o.CSV):
		return fmt.Errorf("--csv %s is the input file; choose another path", o.CSV)
	case o.Workers < 0:
		return fmt.Errorf("--workers must be ≥ 0 (got %d)", o.Workers)
	}
	for _, k := range o.TopK {
		if k < 1 {
			return fmt.Errorf("--top-k values must be ≥ 1 (got %d)", k)
		}
	}
	if err := checkProgressMode(o.Progress); err != nil {
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
	targets, skipped, err := selectMatrices(r, sel, nil)
	if err != nil {
		return err
	}

	workers := o.Workers
	if workers == 0 {
		workers = lowrank.DefaultWorkers()
	}
	workers = max(1, min(workers, len(targets), runtime.GOMAXPROCS(0)*2))
	progress := newProgressLine(o.Stderr, o.Progress)
	summaries := make([]spectrumSummary, len(targets))
	errs := make([]error, len(targets))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var doneMu sync.Mutex
	done := 0
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				t := targets[i]
				if ctx.Err() != nil {
					errs[i] = ctx.Err()
					continue
				}
				values, err := singularValues(r, t)
				if err != nil {
					errs[i] = err
					continue
				}
				d := computeType(t.DType)
				tol := float64(max(t.Shape[0], t.Shape[1])) * machineEpsilon(d) * values[0]
				rank := 0
				for _, v := range values {
					if v > tol {
						rank++
					}
				}
				summaries[i] = spectrumSummary{info: t, compute: d, values: values, tolerance: tol, rank: rank}
				doneMu.Lock()
				done++
				progress.show(done, len(targets), t.Name, time.Since(began))
				doneMu.Unlock()
			}
		})
	}
	for i := range targets {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	progress.clear()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if o.CSV != "" {
		if err := atomicfile.Write(o.CSV, spectrumCSV(summaries)); err != nil {
			return fmt.Errorf("--csv %s: %w", o.CSV, err)
		}
	}
	printSpectrum(o, summaries, skipped)
	return nil
}

// spectrumCSV renders every singular value: tensor,rows,cols,index,singular_value,cumulative_energy.
func spectrumCSV(summaries []spectrumSummary) []byte {
	var b bytes.Buffer
	b.WriteString("tensor,rows,cols,index,singular_value,cumulative_energy\n")
	for _, s := range summaries {
		var total float64
		for _, v := range s.values {
			total += v * v
		}
		var cum float64
		name := csvField(s.info.Name)
		for i, v := range s.values {
			cum += v * v
			frac := 1.0
			if total > 0 {
				frac = cum / total
			}
			fmt.Fprintf(&b, "%s,%d,%d,%d,%s,%s\n", name, s.info.Shape[0], s.info.Shape[1], i,
				strconv.FormatFloat(v, 'g', -1, 64), strconv.FormatFloat(frac, 'g', -1, 64))
		}
	}
	return b.Bytes()
}

// csvField quotes a field when CSV needs it (RFC 4180).
func csvField(s string) string {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func printSpectrum(o lowrankSpectrumOptions, summaries []spectrumSummary, skipped []skippedTensor) {
	w := o.Stdout
	fmt.Fprintf(w, "%s: %d 2-D tensors; rank = #σ > max(m,n)·ε·σmax (ε = 2⁻²³ for F32/F16/BF16, 2⁻⁵² for F64)\n",
		o.In, len(summaries))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := []string{"tensor", "shape", "dtype", "k", "rank", "σmax", "σmin", "median", "cond"}
	for _, k := range o.TopK {
		header = append(header, "E@"+strconv.Itoa(k))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, s := range summaries {
		v := s.values
		k := len(v)
		cond := math.Inf(1)
		if v[k-1] > 0 {
			cond = v[0] / v[k-1]
		}
		ascending := slices.Clone(v)
		slices.Reverse(ascending)
		row := []string{s.info.Name, shapeText(s.info.Shape[0], s.info.Shape[1]), string(s.info.DType),
			strconv.Itoa(k), strconv.Itoa(s.rank),
			fmt.Sprintf("%.4g", v[0]), fmt.Sprintf("%.4g", v[k-1]), fmt.Sprintf("%.4g", median(ascending)),
			fmt.Sprintf("%.3g", cond)}
		for _, kk := range o.TopK {
			row = append(row, fmt.Sprintf("%.4f", s.energyTop(kk)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if o.CSV != "" {
		fmt.Fprintf(w, "wrote every singular value to %s\n", o.CSV)
	}
	printSkipped(w, skipped)
}
