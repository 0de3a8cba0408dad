package rundir

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/safetensors"
	"gonum.org/v1/gonum/mat"
)

// MaxBasisResidual is the largest relative residual ‖UᵀW₀V − diag(S)‖_F/‖S‖₂
// Analyze accepts with VerifyBasis: well above float32 rounding (~1e-6),
// far below what an SVD of another matrix gives (~1).
const MaxBasisResidual = 1e-3

// Options configure Analyze.
type Options struct {
	// BandCount is the number of equal bands of components summarised per
	// layer; 0 means 10 (deciles).
	BandCount int
	// HeatBins is the number of bins per axis of the |ΔM| maps; 0 means
	// analysis.DefaultHeatBins.
	HeatBins int
	// VerifyBasis checks that svd.safetensors belongs to the pretrained
	// weights (one more pass over each layer) and fails when it does not.
	VerifyBasis bool
	// FeatureRank keeps at most this many feature directions (0: all).
	FeatureRank int
	// Layers restricts the analysis to these layer names (nil: all).
	Layers []string
	// Progress, when set, is called after each layer.
	Progress func(layer string, done, total int)
}

// files holds the open readers of a run.
type files struct {
	pretrained, finetuned, svd *safetensors.Reader
	probes, eval               *safetensors.Reader // nil when absent
}

func (f *files) close() {
	for _, r := range []*safetensors.Reader{f.pretrained, f.finetuned, f.svd, f.probes, f.eval} {
		if r != nil {
			r.Close()
		}
	}
}

// openOptional opens path, or returns nil when it does not exist.
func openOptional(path string) (*safetensors.Reader, error) {
	r, err := safetensors.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

// Analyze reads the run in dir and analyses every adapted layer: the
// weight-space decomposition in the stored SVD basis, the feature-space one
// when probes are stored, the forgetting from eval.safetensors (or the
// manifest's metrics), and the same along the listed checkpoints. Layers are
// read one at a time, so memory stays at a few times the largest layer.
func Analyze(ctx context.Context, dir string, o Options) (analysis.Run, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return analysis.Run{}, err
	}
	run := analysis.Run{Name: m.Name, Method: m.Method}
	if run.Name == "" {
		run.Name = filepath.Base(filepath.Clean(dir))
	}
	var f files
	defer f.close()
	open := func(dst **safetensors.Reader, override, name string) error {
		r, err := safetensors.Open(path(dir, override, name))
		if err != nil {
			return fmt.Errorf("run %s: %w", dir, err)
		}
		*dst = r
		return nil
	}
	if err := open(&f.pretrained, m.Files.Pretrained, PretrainedFile); err != nil {
		return run, err
	}
	if err := open(&f.finetuned, m.Files.Finetuned, FinetunedFile); err != nil {
		return run, err
	}
	if err := open(&f.svd, m.Files.SVD, SVDFile); err != nil {
		return run, err
	}
	if f.probes, err = openOptional(path(dir, m.Files.Probes, ProbesFile)); err != nil {
		return run, fmt.Errorf("run %s: %w", dir, err)
	}
	if f.eval, err = openOptional(path(dir, m.Files.Eval, EvalFile)); err != nil {
		return run, fmt.Errorf("run %s: %w", dir, err)
	}

	// Checkpoint weight files, opened once.
	ckptWeights := make([]*safetensors.Reader, len(m.Checkpoints))
	defer func() {
		for _, r := range ckptWeights {
			if r != nil {
				r.Close()
			}
		}
	}()
	for i, c := range m.Checkpoints {
		if err := open(&ckptWeights[i], filepath.Join(c.Dir, FinetunedFile), ""); err != nil {
			return run, err
		}
	}

	layers := m.Layers
	if o.Layers != nil {
		want := map[string]bool{}
		for _, n := range o.Layers {
			want[n] = true
		}
		layers = nil
		for _, l := range m.Layers {
			if want[l.Name] {
				layers = append(layers, l)
				delete(want, l.Name)
			}
		}
		for n := range want {
			return run, fmt.Errorf("run %s: no layer %q in %s", dir, n, ManifestFile)
		}
	}
	ckptDiag := make([]float64, len(m.Checkpoints))
	ckptOff := make([]float64, len(m.Checkpoints))
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return run, err
		}
		layer, energies, err := analyzeLayer(m, l, &f, ckptWeights, o)
		if err != nil {
			return run, fmt.Errorf("run %s: layer %q: %w", dir, l.Name, err)
		}
		for c, e := range energies {
			ckptDiag[c] += e[0]
			ckptOff[c] += e[1]
		}
		run.Layers = append(run.Layers, layer)
		if o.Progress != nil {
			o.Progress(l.Name, i+1, len(layers))
		}
	}

	run.Forgetting, err = forgetting(f.eval, f.eval, m.Metrics)
	if err != nil {
		return run, fmt.Errorf("run %s: %w", dir, err)
	}
	if c := m.Continual; c != nil {
		r := make(analysis.AccuracyMatrix, len(c.Accuracy))
		for i, row := range c.Accuracy {
			r[i] = make([]float64, len(row))
			for j, v := range row {
				r[i][j] = math.NaN()
				if v != nil {
					r[i][j] = *v
				}
			}
		}
		if run.Continual, err = analysis.NewContinual(c.Tasks, r, c.Baseline); err != nil {
			return run, fmt.Errorf("run %s: %s: continual: %w", dir, ManifestFile, err)
		}
	}
	for i, c := range m.Checkpoints {
		ev, err := openOptional(filepath.Join(path(dir, c.Dir, ""), EvalFile))
		if err != nil {
			return run, fmt.Errorf("run %s: checkpoint %d: %w", dir, c.Step, err)
		}
		fg, err := forgetting(f.eval, ev, c.Metrics)
		if ev != nil {
			ev.Close()
		}
		if err != nil {
			return run, fmt.Errorf("run %s: checkpoint %d: %w", dir, c.Step, err)
		}
		run.Checkpoints = append(run.Checkpoints, analysis.CheckpointSummary{
			Step: c.Step, Forgetting: fg, DiagNorm: math.Sqrt(ckptDiag[i]), OffNorm: math.Sqrt(ckptOff[i]),
		})
	}
	return run, nil
}

// analyzeLayer analyses one layer and returns, per checkpoint, its
// (‖diag‖², ‖off‖²).
func analyzeLayer(m Manifest, l Layer, f *files, ckpts []*safetensors.Reader, o Options) (analysis.Layer, [][2]float64, error) {
	out := analysis.Layer{Name: l.Name}
	w0, err := readMatrix(f.pretrained, l.tensorName())
	if err != nil {
		return out, nil, err
	}
	rows, cols := w0.Dims()
	w1, err := readMatrix(f.finetuned, l.tensorName())
	if err != nil {
		return out, nil, err
	}
	if r, c := w1.Dims(); r != rows || c != cols {
		return out, nil, fmt.Errorf("fine-tuned weight is %d×%d, pretrained %d×%d", r, c, rows, cols)
	}
	basis, err := readBasis(f.svd, l.Name)
	if err != nil {
		return out, nil, err
	}
	win, ok, err := m.window(l, rows, cols)
	if err != nil {
		return out, nil, err
	}
	split := analysis.SplitOptions{BandCount: o.BandCount, HeatBins: o.HeatBins}
	if ok {
		split.Window = analysis.Window{Start: win.Start, Rank: win.Rank}
	}
	out.Weight, err = analysis.WeightSpace(w1, basis, analysis.WeightOptions{W0: w0, VerifyBasis: o.VerifyBasis, Split: split})
	if err != nil {
		return out, nil, err
	}
	if o.VerifyBasis {
		scale := norm(basis.S)
		if rel := out.Weight.BasisResidual / scale; !(rel <= MaxBasisResidual) {
			return out, nil, fmt.Errorf("%s does not decompose the pretrained weight: ‖UᵀW₀V − diag(S)‖/‖S‖ = %.3g (want ≤ %g)",
				f.svd.Name(), rel, MaxBasisResidual)
		}
		if out.Weight.OrthoResidual > MaxBasisResidual*math.Sqrt(float64(len(basis.S))) {
			return out, nil, fmt.Errorf("%s: U or V is not orthonormal: ‖UᵀU − I‖ or ‖VᵀV − I‖ = %.3g", f.svd.Name(), out.Weight.OrthoResidual)
		}
	}
	if f.probes != nil {
		if _, err := f.probes.Info(l.Name); err == nil {
			x, err := readMatrix(f.probes, l.Name)
			if err != nil {
				return out, nil, err
			}
			fc, err := analysis.FeatureSpace(x, w0, w1, analysis.FeatureOptions{Rank: o.FeatureRank,
				Split: analysis.SplitOptions{BandCount: o.BandCount, HeatBins: o.HeatBins}})
			if err != nil {
				return out, nil, fmt.Errorf("%s: %w", f.probes.Name(), err)
			}
			out.Feature = &fc
		}
	}
	energies := make([][2]float64, len(ckpts))
	for i, r := range ckpts {
		wc, err := readMatrix(r, l.tensorName())
		if err != nil {
			return out, nil, err
		}
		c, err := analysis.WeightSpace(wc, basis, analysis.WeightOptions{W0: w0, Split: analysis.SplitOptions{Window: split.Window, HeatBins: 1}})
		if err != nil {
			return out, nil, fmt.Errorf("%s: %w", r.Name(), err)
		}
		energies[i] = [2]float64{c.DiagNorm * c.DiagNorm, c.OffNorm * c.OffNorm}
	}
	return out, energies, nil
}

func norm(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s)
}

// readMatrix reads a 2-D float tensor without widening it: F64 as float64,
// F32/F16/BF16 as float32 (analysed in float64 block by block).
func readMatrix(r *safetensors.Reader, name string) (mat.Matrix, error) {
	info, err := r.Info(name)
	if err != nil {
		return nil, err
	}
	if len(info.Shape) != 2 || info.Shape[0] == 0 || info.Shape[1] == 0 {
		return nil, fmt.Errorf("safetensors file %s: tensor %q has shape %v, want a non-empty matrix [rows, cols]", r.Name(), name, info.Shape)
	}
	if info.DType == safetensors.F64 {
		m, err := safetensors.ReadMatrix[float64](r, name)
		if err != nil {
			return nil, err
		}
		return analysis.MatrixOf(m)
	}
	m, err := safetensors.ReadMatrix[float32](r, name)
	if err != nil {
		return nil, err
	}
	return analysis.MatrixOf(m)
}

// readBasis reads NAME.U, NAME.S and NAME.V.
func readBasis(r *safetensors.Reader, name string) (analysis.Basis, error) {
	u, err := readMatrix(r, name+SuffixU)
	if err != nil {
		return analysis.Basis{}, err
	}
	v, err := readMatrix(r, name+SuffixV)
	if err != nil {
		return analysis.Basis{}, err
	}
	info, err := r.Info(name + SuffixS)
	if err != nil {
		return analysis.Basis{}, err
	}
	if len(info.Shape) != 1 {
		return analysis.Basis{}, fmt.Errorf("safetensors file %s: tensor %q has shape %v, want [q]", r.Name(), name+SuffixS, info.Shape)
	}
	s, err := r.Float64s(name + SuffixS)
	if err != nil {
		return analysis.Basis{}, err
	}
	for i := 1; i < len(s); i++ {
		if s[i] > s[i-1] {
			return analysis.Basis{}, fmt.Errorf("safetensors file %s: %q is not descending (S[%d] = %g > S[%d] = %g)", r.Name(), name+SuffixS, i, s[i], i-1, s[i-1])
		}
	}
	return analysis.Basis{U: u, S: s, V: v}, nil
}

// readInts reads a 1-D integer tensor.
func readInts(r *safetensors.Reader, name string) ([]int, error) {
	info, err := r.Info(name)
	if err != nil {
		return nil, err
	}
	if len(info.Shape) != 1 {
		return nil, fmt.Errorf("safetensors file %s: tensor %q has shape %v, want a vector", r.Name(), name, info.Shape)
	}
	raw, err := r.Raw(name)
	if err != nil {
		return nil, err
	}
	n := info.Shape[0]
	out := make([]int, n)
	le := binary.LittleEndian
	for i := range out {
		switch info.DType {
		case safetensors.I64:
			out[i] = int(int64(le.Uint64(raw[8*i:])))
		case safetensors.U64:
			out[i] = int(le.Uint64(raw[8*i:]))
		case safetensors.I32:
			out[i] = int(int32(le.Uint32(raw[4*i:])))
		case safetensors.U32:
			out[i] = int(le.Uint32(raw[4*i:]))
		case safetensors.I16:
			out[i] = int(int16(le.Uint16(raw[2*i:])))
		case safetensors.U16:
			out[i] = int(le.Uint16(raw[2*i:]))
		case safetensors.I8:
			out[i] = int(int8(raw[i]))
		case safetensors.U8:
			out[i] = int(raw[i])
		default:
			return nil, fmt.Errorf("safetensors file %s: tensor %q is %s, want an integer dtype (I64, I32, I16, I8, U64, U32, U16, U8)", r.Name(), name, info.DType)
		}
	}
	return out, nil
}

// readLogits reads a 2-D float tensor [rows, classes] as float64.
func readLogits(r *safetensors.Reader, name string) ([]float64, int, error) {
	info, err := r.Info(name)
	if err != nil {
		return nil, 0, err
	}
	if len(info.Shape) != 2 {
		return nil, 0, fmt.Errorf("safetensors file %s: tensor %q has shape %v, want [examples, classes]", r.Name(), name, info.Shape)
	}
	v, err := r.Float64s(name)
	return v, info.Shape[1], err
}

func has(r *safetensors.Reader, name string) bool {
	if r == nil {
		return false
	}
	_, err := r.Info(name)
	return err == nil
}

// forgetting computes the forgetting from the run's eval file (base logits,
// labels, text targets) and the fine-tuned logits in after (the run's own
// eval file, or a checkpoint's; nil when there are none), falling back to
// metrics for what the files lack.
func forgetting(base, after *safetensors.Reader, metrics *Metrics) (analysis.Forgetting, error) {
	fg := analysis.UnknownForgetting()
	if has(base, EvalLabels) && has(base, EvalBaseLogits) && has(after, EvalFinetunedLogits) {
		labels, err := readInts(base, EvalLabels)
		if err != nil {
			return fg, err
		}
		zb, cb, err := readLogits(base, EvalBaseLogits)
		if err != nil {
			return fg, err
		}
		za, ca, err := readLogits(after, EvalFinetunedLogits)
		if err != nil {
			return fg, err
		}
		if ca != cb || len(za) != len(zb) {
			return fg, fmt.Errorf("%s: %s has %d×%d values, %s has %d×%d",
				after.Name(), EvalFinetunedLogits, len(za)/max(ca, 1), ca, EvalBaseLogits, len(zb)/max(cb, 1), cb)
		}
		if fg.AccuracyBefore, err = analysis.Accuracy(zb, cb, labels); err != nil {
			return fg, fmt.Errorf("%s: %s: %w", base.Name(), EvalBaseLogits, err)
		}
		if fg.AccuracyAfter, err = analysis.Accuracy(za, ca, labels); err != nil {
			return fg, fmt.Errorf("%s: %s: %w", after.Name(), EvalFinetunedLogits, err)
		}
		if fg.MeanKL, err = analysis.MeanKL(zb, za, cb); err != nil {
			return fg, err
		}
	}
	if has(base, EvalTextTargets) && has(base, EvalBaseTextLogits) && has(after, EvalFinetunedTextLogits) {
		targets, err := readInts(base, EvalTextTargets)
		if err != nil {
			return fg, err
		}
		for _, t := range []struct {
			r    *safetensors.Reader
			name string
			dst  *float64
		}{{base, EvalBaseTextLogits, &fg.BPCBefore}, {after, EvalFinetunedTextLogits, &fg.BPCAfter}} {
			z, vocab, err := readLogits(t.r, t.name)
			if err != nil {
				return fg, err
			}
			if *t.dst, err = analysis.BitsPerCharacter(z, vocab, targets); err != nil {
				return fg, fmt.Errorf("%s: %s: %w", t.r.Name(), t.name, err)
			}
		}
	}
	if metrics != nil {
		for _, v := range []struct {
			src *float64
			dst *float64
		}{{metrics.AccuracyBefore, &fg.AccuracyBefore}, {metrics.AccuracyAfter, &fg.AccuracyAfter},
			{metrics.MeanKL, &fg.MeanKL}, {metrics.BPCBefore, &fg.BPCBefore}, {metrics.BPCAfter, &fg.BPCAfter}} {
			if v.src != nil && math.IsNaN(*v.dst) {
				*v.dst = *v.src
			}
		}
	}
	fg.AccuracyDrop = analysis.AccuracyDrop(fg.AccuracyBefore, fg.AccuracyAfter)
	return fg, nil
}
