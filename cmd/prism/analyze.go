package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/analysis/report"
	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/spf13/cobra"
)

func init() { addCommand(newAnalyzeCmd) }

// analyzeOptions are the inputs of runAnalyze.
type analyzeOptions struct {
	Runs        []string  // run directories
	Out         string    // output directory ("" → RUN/analysis for one run, ./analysis for several)
	BandCount   int       // bands of components per layer
	HeatBins    int       // bins per axis of the |ΔM| maps
	Figures     bool      // draw figures
	PerLayer    bool      // also draw every layer's figures
	VerifyBasis bool      // check the stored SVD against the pretrained weights
	FeatureRank int       // keep at most this many feature directions (0: all)
	Layers      []string  // analyse only these layers
	Log         io.Writer // summary (nil: discard)
	Progress    io.Writer // one line per analysed layer (nil: discard)
}

func newAnalyzeCmd() *cobra.Command {
	o := analyzeOptions{}
	cmd := &cobra.Command{
		Use:   "analyze RUN...",
		Short: "Decompose what fine-tuning changed (weight and feature space) and what it forgot",
		Long: `analyze reads one or more fine-tuning run directories and writes tables
(markdown and CSV) and figures (SVG, PDF, PNG) of the stability–plasticity
analysis, runs side by side (e.g. pissa vs mid vs milora):

  weight space   ΔM = Uᵀ(W₁−W₀)V in the pretrained layer's singular basis; its
                 diagonal (strength of old components) and off-diagonal part
                 (mixing, new directions), per component, per band, per layer
                 and averaged, with the fine-tuned window marked
  feature space  ΔΣ = QᵀΣ_Y₁Q − Λ on the old task's probe inputs of the layer
  forgetting     old-task accuracy drop (points), mean KL to the pretrained
                 model, bits per character, along checkpoints when stored;
                 average accuracy, backward/forward transfer over task sequences

A run directory holds (tensors per adapted layer NAME, weights [out, in]):

  run.json                        {"name", "method", "layers": [{"name", "tensor",
                                   "window": {"start", "rank"}}], "rank", "window",
                                   "files", "metrics", "checkpoints": [{"step", "dir"}],
                                   "continual": {"tasks", "accuracy", "baseline"}}
  weights_pretrained.safetensors  W₀ (tensor "tensor", default NAME)
  weights_finetuned.safetensors   W₁ merged = Wres + scale·B′·A′
  svd.safetensors                 NAME.U [m,q], NAME.S [q], NAME.V [n,q] from initialisation
  probes.safetensors              optional: NAME [N, n] layer inputs on old-task data
  eval.safetensors                optional: labels [N], base.logits and finetuned.logits
                                   [N, C]; text.targets [T], base.text_logits and
                                   finetuned.text_logits [T, V] for language models
  checkpoints/STEP/               optional: weights_finetuned.safetensors, eval.safetensors

Outputs in --out: report.md (all summary tables), forgetting, layers, bands,
feature_bands, checkpoints, continual (.md and .csv), components.csv and
feature_components.csv (per component), and figures/: profile_mean,
heatmap_mean, bands, feature_mean, feature_heatmap_mean, checkpoints,
continual, and layers/NAME_{profile,heatmap,feature}. See docs/analysis.md.`,
		Example: `  prism analyze runs/pissa runs/mid runs/milora --out results/analysis
  prism analyze runs/mid --layer blocks.0.mlp.fc1 --per-layer=false`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Runs = args
			o.Log = cmd.OutOrStdout()
			o.Progress = cmd.ErrOrStderr()
			return runAnalyze(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "", "output directory (default RUN/analysis for one run, ./analysis for several)")
	f.IntVar(&o.BandCount, "bands", 10, "number of equal bands of components summarised per layer (10 = deciles)")
	f.IntVar(&o.HeatBins, "heat-bins", analysis.DefaultHeatBins, "bins per axis of the |ΔM| heatmaps (large layers are binned by RMS)")
	f.BoolVar(&o.Figures, "figures", true, "draw figures (SVG, PDF and PNG)")
	f.BoolVar(&o.PerLayer, "per-layer", true, "also draw each layer's figures (in figures/layers)")
	f.BoolVar(&o.VerifyBasis, "verify-basis", true, "check that svd.safetensors decomposes the pretrained weights (one more pass per layer)")
	f.IntVar(&o.FeatureRank, "feature-rank", 0, "keep at most this many old-task feature directions per layer (0: all with variance)")
	f.StringArrayVar(&o.Layers, "layer", nil, "analyse only this layer (repeatable; default: every layer in run.json)")
	return cmd
}

// runAnalyze analyses the runs and writes the tables and figures.
func runAnalyze(ctx context.Context, o analyzeOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, progress := o.Log, o.Progress
	if log == nil {
		log = io.Discard
	}
	if progress == nil {
		progress = io.Discard
	}
	if len(o.Runs) == 0 {
		return fmt.Errorf("analyze: no run directories given")
	}
	out := o.Out
	if out == "" {
		out = "analysis"
		if len(o.Runs) == 1 {
			out = filepath.Join(o.Runs[0], "analysis")
		}
	}
	var runs []analysis.Run
	names := map[string]int{}
	for _, dir := range o.Runs {
		run, err := rundir.Analyze(ctx, dir, rundir.Options{
			BandCount: o.BandCount, HeatBins: o.HeatBins, VerifyBasis: o.VerifyBasis,
			FeatureRank: o.FeatureRank, Layers: o.Layers,
			Progress: func(layer string, done, total int) {
				fmt.Fprintf(progress, "%s: layer %d/%d %s\n", dir, done, total, layer)
			},
		})
		if err != nil {
			return err
		}
		// Two runs with one name (e.g. seeds of a method) are told apart.
		if names[run.Name]++; names[run.Name] > 1 {
			run.Name = fmt.Sprintf("%s (%s)", run.Name, filepath.Base(filepath.Clean(dir)))
		}
		runs = append(runs, run)
	}
	tables, err := report.WriteTables(out, runs)
	if err != nil {
		return err
	}
	var figures []string
	if o.Figures {
		if figures, err = report.WriteFigures(filepath.Join(out, "figures"), runs, report.FigureOptions{PerLayer: o.PerLayer}); err != nil {
			return err
		}
	}
	if err := report.ForgettingTable(runs).WriteMarkdown(log); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %d tables and %d figures (svg, pdf, png) to %s\n", len(tables), len(figures), out)
	return nil
}
