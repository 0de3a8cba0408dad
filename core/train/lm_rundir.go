package train

import (
	"fmt"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
)

// DefaultProbeWindows is the number of task-A test windows whose layer
// inputs and logits a text run directory stores when ProbeWindows is 0.
const DefaultProbeWindows = 16

// textProbes are the pretrained model's layer inputs on the first task-A
// test windows, by layer, as float64 [windows·T, in] matrices.
func textProbes(b backends.Backend, mctx *mlctx.Context, m models.LMConfig, windows textWindows, layers []adapter.Assignment) (map[string]lowrank.Matrix[float64], error) {
	names := make([]string, len(layers))
	for i, a := range layers {
		names[i] = a.Layer.Name
	}
	order := make([]int, windows.Len())
	for i := range order {
		order[i] = i
	}
	x, _ := windows.batch(order, len(order))
	forward := func(ctx *mlctx.Context, run models.Run, x *Node) *Node { return models.LM(ctx, m, run, x) }
	ins, err := models.LayerInputs(b, mctx, models.Run{}, forward, x, names...)
	if err != nil {
		return nil, fmt.Errorf("run dir: probing the layers' inputs: %w", err)
	}
	out := map[string]lowrank.Matrix[float64]{}
	for i, t := range ins {
		dims := t.Shape().Dimensions
		mat := lowrank.NewMatrix[float64](dims[0], dims[1])
		tensors.MustConstFlatData(t, func(flat []float32) {
			for j, v := range flat {
				mat.Data[j] = float64(v)
			}
		})
		out[names[i]] = mat
	}
	return out, nil
}

// writeTextRunDir writes a text run's analysis files in core/analysis's
// run-directory format (rundir.Write): W₀, the merged W₁ and the initial SVD
// of every adapted layer, the layers' inputs on the probe windows, and the
// old corpus's next-byte targets with the pretrained and fine-tuned logits
// on them (eval.safetensors: text.targets, base.text_logits,
// finetuned.text_logits), plus run.json with the windows and the measured
// forgetting (bits per character on the whole old test set, KL).
func writeTextRunDir(dir string, cfg TextFinetuneConfig, res TextResult, adapted *adapter.Adapted, mctx *mlctx.Context,
	probes map[string]lowrank.Matrix[float64], targets []int, base, after []float32, vocab int) error {
	m := rundir.Manifest{Name: res.Label, Method: cfg.Method,
		Metrics: &rundir.Metrics{MeanKL: &res.TaskAAfter.KL, BPCBefore: &res.TaskABefore.BPC, BPCAfter: &res.TaskAAfter.BPC}}
	var layers []rundir.LayerData[float64]
	for _, l := range adapted.Layers() {
		if l.SVD == nil {
			return fmt.Errorf("run dir: layer %q has no SVD (attach with KeepSVD)", l.Name)
		}
		w1, err := l.Merged(mctx)
		if err != nil {
			return err
		}
		rl := rundir.Layer{Name: l.Name}
		if s, r, ok := l.Window(); ok {
			rl.Window = &rundir.Window{Start: s, Rank: r}
		}
		layers = append(layers, rundir.LayerData[float64]{Layer: rl, Pretrained: l.Pretrained, Finetuned: w1, SVD: *l.SVD, Probes: probes[l.Name]})
	}
	eval := &rundir.Eval{TextTargets: targets, Vocab: vocab, BaseText: base, FinetunedText: after}
	if err := rundir.Write(dir, m, layers, eval); err != nil {
		return fmt.Errorf("run dir %s: %w", dir, err)
	}
	return writeJSON(filepath.Join(dir, RunResultFile), struct {
		Config TextFinetuneConfig `json:"config"`
		Result TextResult         `json:"result"`
	}{cfg, res})
}
