package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/figure"
)

// MeanLayer is the layer name of rows averaged over a run's layers.
const MeanLayer = "mean"

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// nanMean returns the mean of the non-NaN values (NaN when there are none).
func nanMean(vs []float64) float64 {
	var s float64
	n := 0
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			s += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

var layerColumns = []Column{
	{"run", "run"}, {"layer", "layer"}, {"rows", "m"}, {"cols", "n"}, {"components", "q"},
	{"window", "window"},
	{"delta_w_norm", "‖ΔW‖"}, {"captured", "captured"},
	{"diag_norm", "‖diag ΔM‖"}, {"off_norm", "‖off ΔM‖"}, {"off_diag_ratio", "off/diag"},
	{"off_fraction", "off share"}, {"window_block_share", "window block share"},
	{"diag_centroid", "diag centroid"}, {"off_centroid", "off centroid"},
	{"feature_diag_norm", "‖diag ΔΣ‖"}, {"feature_off_norm", "‖off ΔΣ‖"},
	{"feature_off_diag_ratio", "ΔΣ off/diag"}, {"feature_relative_change", "‖ΔΣ‖/tr Σ₀"},
	{"outside_variance_share", "outside var. share"},
}

// LayerTable has one row per layer of each run and one row per run averaged
// over its layers (layer "mean": the mean of each column over layers).
func LayerTable(runs []analysis.Run) Table {
	t := Table{
		Name:    "layers",
		Title:   "Weight- and feature-space change per layer",
		Columns: layerColumns,
		Note: "ΔM = Uᵀ(W₁−W₀)V in the pretrained singular basis (q×q). " +
			"captured = ‖ΔM‖²/‖ΔW‖² (share of the change inside the basis); off share = ‖off‖²/‖ΔM‖²; " +
			"window block share = share of ‖ΔM‖² inside the window×window block; centroids are energy-weighted component indices. " +
			"ΔΣ = QᵀΣ_Y₁Q − Λ on old-task probe inputs; outside var. share = variance of Y₁ outside span(Q) / tr Σ_Y₁. " +
			"Rows \"mean\" average each column over the run's layers.",
	}
	for _, run := range runs {
		var rows [][]any
		for _, l := range run.Layers {
			rows = append(rows, layerRow(run.Name, l))
		}
		t.Rows = append(t.Rows, rows...)
		if len(rows) > 1 {
			t.Rows = append(t.Rows, meanRow(run.Name, rows))
		}
	}
	return t
}

func layerRow(run string, l analysis.Layer) []any {
	w := l.Weight
	row := []any{
		run, l.Name, w.Rows, w.Cols, w.K, w.Window.String(),
		w.DeltaWNorm, w.CapturedFraction(),
		w.DiagNorm, w.OffNorm, w.OffDiagRatio(), w.OffFraction(), w.WindowEnergy.InsideShare(),
		w.DiagCentroid, w.OffCentroid,
	}
	nan := math.NaN()
	if f := l.Feature; f != nil {
		row = append(row, f.DiagNorm, f.OffNorm, f.OffDiagRatio(), ratio(f.Norm(), f.Variance0), ratio(f.OutsideVariance, f.Variance1))
	} else {
		row = append(row, nan, nan, nan, nan, nan)
	}
	return row
}

// meanRow averages the float and int columns of rows; text columns other
// than the run name become "mean" or are left empty.
func meanRow(run string, rows [][]any) []any {
	out := make([]any, len(rows[0]))
	out[0], out[1] = run, MeanLayer
	for c := 2; c < len(out); c++ {
		var vals []float64
		for _, r := range rows {
			switch x := r[c].(type) {
			case float64:
				vals = append(vals, x)
			case int:
				vals = append(vals, float64(x))
			}
		}
		if len(vals) == 0 {
			out[c] = ""
			continue
		}
		out[c] = nanMean(vals)
	}
	return out
}

// bandColumns are the columns of a band table of the change symbol (ΔM or
// ΔΣ); windowed tables have an in-window column.
func bandColumns(symbol string, windowed bool) []Column {
	cols := []Column{{"run", "run"}, {"layer", "layer"}, {"band", "band"}, {"lo", "from"}, {"hi", "to"}}
	if windowed {
		cols = append(cols, Column{"in_window", "in window"})
	}
	return append(cols, Column{"mean_diag", "mean " + symbol + "_ii"}, Column{"diag_norm", "‖diag‖"},
		Column{"off_row_norm", "‖off‖ rows"}, Column{"off_col_norm", "‖off‖ cols"}, Column{"energy_share", "energy share"})
}

// BandTable summarises the weight-space change over bands of components
// (deciles by default). With perLayer it has a row per band of every layer;
// it always has the bands averaged over each run's layers (layer "mean",
// bounds as fractions of q, in-window as a fraction of the band).
func BandTable(runs []analysis.Run, perLayer bool) Table {
	return bandTable("bands", "Weight-space change by band of components", "ΔM", true, runs, perLayer,
		func(l analysis.Layer) *analysis.Split { return &l.Weight.Split },
		"Bands of pretrained singular components (index 0 = largest). energy share = share of ‖ΔM‖² in the band's rows. "+
			"\"mean\" rows average band by band over layers (norms as root mean squares; from/to as fractions of q).")
}

// FeatureBandTable is BandTable for the feature-space change ΔΣ_Y (bands of
// old-task feature directions, index 0 = most variance).
func FeatureBandTable(runs []analysis.Run, perLayer bool) Table {
	return bandTable("feature_bands", "Feature-space change by band of old-task feature directions", "ΔΣ", false, runs, perLayer,
		func(l analysis.Layer) *analysis.Split {
			if l.Feature == nil {
				return nil
			}
			return &l.Feature.Split
		},
		"Bands of eigen-directions of the old task's output covariance Σ_Y₀ (index 0 = most variance). "+
			"energy share = share of ‖ΔΣ‖² in the band's rows.")
}

func bandTable(name, title, symbol string, windowed bool, runs []analysis.Run, perLayer bool, pick func(analysis.Layer) *analysis.Split, note string) Table {
	t := Table{Name: name, Title: title, Note: note, Columns: bandColumns(symbol, windowed)}
	row := func(cells ...any) []any {
		if !windowed {
			cells = append(cells[:5], cells[6:]...)
		}
		return cells
	}
	for _, run := range runs {
		var splits []analysis.Split
		for _, l := range run.Layers {
			s := pick(l)
			if s == nil {
				continue
			}
			splits = append(splits, *s)
			if !perLayer {
				continue
			}
			for b, band := range s.Bands {
				t.Rows = append(t.Rows, row(run.Name, l.Name, b, band.Lo, band.Hi-1, float64(band.InWindow),
					band.MeanDiag, band.DiagNorm, band.OffRowNorm, band.OffColNorm, band.EnergyShare))
			}
		}
		if len(splits) == 0 {
			continue
		}
		mean, err := analysis.MeanBands(splits)
		if err != nil { // layers with different band counts: no average
			continue
		}
		for _, m := range mean {
			t.Rows = append(t.Rows, row(run.Name, MeanLayer, m.Index, m.Lo, m.Hi, m.InWindow,
				m.MeanDiag, m.DiagNorm, m.OffRowNorm, m.OffColNorm, m.EnergyShare))
		}
	}
	return t
}

// ComponentTable is the long per-component table of the weight-space change
// (CSV-sized): ΔM_ii, its ratio to S_i and the off-diagonal energies.
func ComponentTable(runs []analysis.Run) Table {
	t := Table{
		Name: "components", Title: "Weight-space change per component",
		Columns: []Column{{"run", "run"}, {"layer", "layer"}, {"component", "i"}, {"singular_value", "S_i"},
			{"in_window", "in window"}, {"diag", "ΔM_ii"}, {"relative_diag", "ΔM_ii/S_i"},
			{"off_row_energy", "off row energy"}, {"off_col_energy", "off col energy"}},
	}
	for _, run := range runs {
		for _, l := range run.Layers {
			w := l.Weight
			rel := w.RelativeDiag()
			for i := 0; i < w.K; i++ {
				in := 0
				if w.Window.Contains(i) {
					in = 1
				}
				t.Rows = append(t.Rows, []any{run.Name, l.Name, i, w.S[i], in, w.Diag[i], rel[i], w.OffRowEnergy[i], w.OffColEnergy[i]})
			}
		}
	}
	return t
}

// FeatureComponentTable is the per-direction table of the feature-space change.
func FeatureComponentTable(runs []analysis.Run) Table {
	t := Table{
		Name: "feature_components", Title: "Feature-space change per old-task feature direction",
		Columns: []Column{{"run", "run"}, {"layer", "layer"}, {"direction", "i"}, {"variance", "λ_i"},
			{"diag", "ΔΣ_ii"}, {"relative_diag", "ΔΣ_ii/λ_i"}, {"off_row_energy", "off row energy"}, {"off_col_energy", "off col energy"}},
	}
	for _, run := range runs {
		for _, l := range run.Layers {
			f := l.Feature
			if f == nil {
				continue
			}
			rel := f.RelativeDiag()
			for i := 0; i < f.K; i++ {
				t.Rows = append(t.Rows, []any{run.Name, l.Name, i, f.Lambda[i], f.Diag[i], rel[i], f.OffRowEnergy[i], f.OffColEnergy[i]})
			}
		}
	}
	return t
}

// ForgettingTable has one row per run: old-task accuracy before and after,
// the drop in points, the mean KL to the pretrained model, bits per
// character, and the weight change summed over layers.
func ForgettingTable(runs []analysis.Run) Table {
	t := Table{
		Name: "forgetting", Title: "Forgetting of the old task",
		Note: "Accuracy in %, drop = before − after in points; KL = mean KL(p_base ‖ p_after) in nats; " +
			"bpc = bits per character on held-out pretraining text; ‖diag‖, ‖off‖ summed over layers as energies.",
		Columns: []Column{{"run", "run"}, {"method", "method"}, {"accuracy_before", "acc. before (%)"},
			{"accuracy_after", "acc. after (%)"}, {"accuracy_drop", "drop (points)"}, {"mean_kl", "KL (nats)"},
			{"bpc_before", "bpc before"}, {"bpc_after", "bpc after"}, {"bpc_rise", "bpc rise"},
			{"diag_norm", "‖diag ΔM‖"}, {"off_norm", "‖off ΔM‖"}},
	}
	for _, run := range runs {
		f := run.Forgetting
		d, o := analysis.SummarizeLayers(run.Layers)
		t.Rows = append(t.Rows, []any{run.Name, run.Method, 100 * f.AccuracyBefore, 100 * f.AccuracyAfter, f.AccuracyDrop,
			f.MeanKL, f.BPCBefore, f.BPCAfter, f.BPCRise(), d, o})
	}
	return t
}

// CheckpointTable follows each run along its checkpoints.
func CheckpointTable(runs []analysis.Run) Table {
	t := Table{
		Name: "checkpoints", Title: "Forgetting and weight change along training",
		Columns: []Column{{"run", "run"}, {"step", "step"}, {"accuracy_after", "acc. (%)"}, {"accuracy_drop", "drop (points)"},
			{"mean_kl", "KL (nats)"}, {"bpc_after", "bpc"}, {"diag_norm", "‖diag ΔM‖"}, {"off_norm", "‖off ΔM‖"}},
	}
	for _, run := range runs {
		for _, c := range run.Checkpoints {
			t.Rows = append(t.Rows, []any{run.Name, c.Step, 100 * c.AccuracyAfter, c.AccuracyDrop, c.MeanKL, c.BPCAfter, c.DiagNorm, c.OffNorm})
		}
	}
	return t
}

// ContinualTable has one row per stage of each run over a task sequence:
// average accuracy, backward transfer and mean forgetting after the stage,
// and the run's forward transfer on its last row.
func ContinualTable(runs []analysis.Run) Table {
	t := Table{
		Name: "continual", Title: "Continual learning over a task sequence",
		Note: "After training on tasks 0…k: ACC = mean accuracy over them (%), BWT = mean change on earlier tasks since " +
			"each was learnt (points, Lopez-Paz & Ranzato 2017), forgetting = mean drop from each earlier task's best " +
			"accuracy (points, Chaudhry et al. 2018); FWT (points) on the last stage.",
		Columns: []Column{{"run", "run"}, {"stage", "stage"}, {"task", "task trained"}, {"average_accuracy", "ACC (%)"},
			{"backward_transfer", "BWT (points)"}, {"mean_forgetting", "forgetting (points)"}, {"forward_transfer", "FWT (points)"}},
	}
	for _, run := range runs {
		c := run.Continual
		if c == nil {
			continue
		}
		for k, st := range c.Stages {
			fwt := math.NaN()
			if k == len(c.Stages)-1 {
				fwt = 100 * c.ForwardTransfer
			}
			t.Rows = append(t.Rows, []any{run.Name, st.Stage, c.Tasks[k], 100 * st.AverageAccuracy,
				100 * st.BackwardTransfer, 100 * st.MeanForgetting, fwt})
		}
	}
	return t
}

// Tables returns every table for runs: markdown versions summarise (bands
// averaged over layers only), CSV versions are complete.
func Tables(runs []analysis.Run) (markdown, csv []Table) {
	markdown = []Table{ForgettingTable(runs), LayerTable(runs), BandTable(runs, false), FeatureBandTable(runs, false)}
	csv = []Table{ForgettingTable(runs), LayerTable(runs), BandTable(runs, true), FeatureBandTable(runs, true),
		ComponentTable(runs), FeatureComponentTable(runs)}
	if hasCheckpoints(runs) {
		markdown = append(markdown, CheckpointTable(runs))
		csv = append(csv, CheckpointTable(runs))
	}
	if hasContinual(runs) {
		markdown = append(markdown, ContinualTable(runs))
		csv = append(csv, ContinualTable(runs))
	}
	return markdown, csv
}

func hasContinual(runs []analysis.Run) bool {
	for _, r := range runs {
		if r.Continual != nil {
			return true
		}
	}
	return false
}

func hasCheckpoints(runs []analysis.Run) bool {
	for _, r := range runs {
		if len(r.Checkpoints) > 0 {
			return true
		}
	}
	return false
}

// String renders a table as markdown (for logs and tests).
func (t Table) String() string {
	var b strings.Builder
	_ = t.WriteMarkdown(&b)
	return b.String()
}

// WriteTables writes every table of Tables into dir: NAME.csv (complete)
// and NAME.md (summary) for each, plus report.md with all the markdown
// tables in one file. It returns the paths written.
func WriteTables(dir string, runs []analysis.Run) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	md, csvs := Tables(runs)
	var written []string
	write := func(name string, render func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		var b strings.Builder
		if err := render(&b); err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		if err := figure.WriteFileAtomic(path, []byte(b.String())); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	for _, t := range csvs {
		if err := write(t.Name+".csv", t.WriteCSV); err != nil {
			return written, err
		}
	}
	for _, t := range md {
		if err := write(t.Name+".md", t.WriteMarkdown); err != nil {
			return written, err
		}
	}
	err := write("report.md", func(w io.Writer) error {
		names := make([]string, len(runs))
		for i, r := range runs {
			names[i] = r.Name
		}
		if _, err := fmt.Fprintf(w, "# Stability–plasticity analysis: %s\n\n", strings.Join(names, ", ")); err != nil {
			return err
		}
		for _, t := range md {
			if err := t.WriteMarkdown(w); err != nil {
				return err
			}
		}
		return nil
	})
	return written, err
}
