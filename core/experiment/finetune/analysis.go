package finetune

import (
	"context"
	"math"

	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/experiment"
)

// Summary keys, per adapted layer (scope = the layer's name) from the
// weight-space decomposition ΔM = Uᵀ·(W₁ − W₀)·V in the pretrained singular
// basis (DESIGN.md §2, core/analysis), and from the feature space when the
// run has probe inputs:
//
//	diag_norm      ‖diag ΔM‖ (change of strength of existing components)
//	off_norm       ‖off ΔM‖_F (mixing of components: new directions)
//	off_ratio      off_norm / diag_norm
//	off_share      ‖off‖² / ‖ΔM‖²
//	diag_centroid  energy-weighted mean component index of the diagonal change
//	off_centroid   the same for the off-diagonal change
//	captured       ‖ΔM‖² / ‖W₁ − W₀‖² (share of the change inside span(U)⊗span(V))
//	window_share   share of ‖ΔM‖² inside the adapter's window block (windowed methods)
//	window_energy  Σ_{i∈window} σᵢ² / Σ σᵢ²: spectral energy of W₀ the window starts from
//	feat_diag_norm, feat_off_norm   the same split of ΔΣ_Y on old-task features
//	feat_off_share
//
// and for the whole model (scope "model"): diag_norm and off_norm summed as
// energies over layers, off_ratio, mean window_share and window_energy.
const ModelScope = "model"

// summaries analyses the run directory and flattens the result.
func summaries(ctx context.Context, dir string) ([]experiment.Summary, error) {
	run, err := rundir.Analyze(ctx, dir, rundir.Options{})
	if err != nil {
		return nil, err
	}
	var out []experiment.Summary
	add := func(scope, key string, v float64) {
		out = append(out, experiment.Summary{Scope: scope, Key: key, Value: v})
	}
	var shares, energies []float64
	for _, l := range run.Layers {
		w := l.Weight
		add(l.Name, "diag_norm", w.DiagNorm)
		add(l.Name, "off_norm", w.OffNorm)
		add(l.Name, "off_ratio", w.OffDiagRatio())
		add(l.Name, "off_share", w.OffFraction())
		add(l.Name, "diag_centroid", w.DiagCentroid)
		add(l.Name, "off_centroid", w.OffCentroid)
		add(l.Name, "captured", w.CapturedFraction())
		if !w.Window.Empty() {
			share := w.WindowEnergy.InsideShare()
			energy := windowEnergy(w.S, w.Window)
			add(l.Name, "window_share", share)
			add(l.Name, "window_energy", energy)
			shares, energies = append(shares, share), append(energies, energy)
		}
		if f := l.Feature; f != nil {
			add(l.Name, "feat_diag_norm", f.DiagNorm)
			add(l.Name, "feat_off_norm", f.OffNorm)
			add(l.Name, "feat_off_share", f.OffFraction())
		}
	}
	diag, off := analysis.SummarizeLayers(run.Layers)
	add(ModelScope, "diag_norm", diag)
	add(ModelScope, "off_norm", off)
	add(ModelScope, "off_ratio", off/diag)
	if len(shares) > 0 {
		add(ModelScope, "window_share", mean(shares))
		add(ModelScope, "window_energy", mean(energies))
	}
	return out, nil
}

// windowEnergy is Σ_{i∈w} sᵢ² / Σ sᵢ².
func windowEnergy(s []float64, w analysis.Window) float64 {
	var in, total float64
	for i, v := range s {
		total += v * v
		if w.Contains(i) {
			in += v * v
		}
	}
	if total == 0 {
		return math.NaN()
	}
	return in / total
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
