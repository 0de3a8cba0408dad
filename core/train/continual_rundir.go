package train

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

// Run directory of a task sequence (ContinualConfig.RunDir), the layout
// core/analysis/rundir reads (docs/analysis.md), describing the change of
// the whole sequence against the pretrained model:
//
//	run.json                        name, method, rank, layers with stage 1's windows,
//	                                metrics (task 0 before/after, mean KL), one checkpoint per
//	                                stage, and "continual": {tasks, accuracy} — the accuracy
//	                                matrix as fractions, null above the diagonal
//	result.json                     the ContinualResult and ContinualConfig
//	weights_pretrained.safetensors  W⁽⁰⁾ of every adapted layer (the pretrained model), [out, in]
//	weights_finetuned.safetensors   W⁽ᵀ⁻¹⁾, the merged weights after the last stage
//	svd.safetensors                 NAME.U, NAME.S, NAME.V: the thin SVD of W⁽⁰⁾
//	probes.safetensors              NAME [N·T, in]: the layers' inputs in the pretrained model on
//	                                the first ProbeExamples task-0 test images
//	eval.safetensors                labels, base.logits, finetuned.logits on task 0's test images
//	checkpoints/STEP/               after each stage (STEP = optimisation steps so far):
//	                                weights_finetuned.safetensors and eval.safetensors
//	                                (finetuned.logits on task 0)
//
// The window recorded per layer is stage 1's, [s, s+r) in the pretrained
// basis; later stages take the same indices of their own (merged) weights'
// spectrum.

// continualManifest is run.json with the continual section.
type continualManifest struct {
	Name        string            `json:"name,omitempty"`
	Method      string            `json:"method,omitempty"`
	Rank        int               `json:"rank,omitempty"`
	Layers      []runLayer        `json:"layers"`
	Metrics     *runMetrics       `json:"metrics,omitempty"`
	Checkpoints []runCheckpoint   `json:"checkpoints,omitempty"`
	Continual   *continualSection `json:"continual"`
}

// continualSection is run.json's "continual": accuracy[i][j] is the
// accuracy (fraction) on task j after stage i, null where not measured.
type continualSection struct {
	Tasks    []string     `json:"tasks"`
	Accuracy [][]*float64 `json:"accuracy"`
}

// copyTensor reads the named tensor of r as it is stored, renamed.
func copyTensor(r *safetensors.Reader, name, as string) (safetensors.Tensor, error) {
	info, err := r.Info(name)
	if err != nil {
		return safetensors.Tensor{}, err
	}
	raw, err := r.Raw(name)
	if err != nil {
		return safetensors.Tensor{}, err
	}
	shape := make([]int, len(info.Shape))
	for i, d := range info.Shape {
		shape[i] = int(d)
	}
	return safetensors.FromRaw(as, info.DType, shape, raw), nil
}

// layerWeights reads the adapted layers' weights ("LAYER.weight") from a
// model file, as tensors named by the layer, and as float64 matrices.
func layerWeights(path string, layers []LayerInfo) ([]safetensors.Tensor, []lowrank.Matrix[float64], error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var ts []safetensors.Tensor
	var ms []lowrank.Matrix[float64]
	for _, l := range layers {
		name := l.Name + "." + adapter.WeightName
		t, err := copyTensor(r, name, l.Name)
		if err != nil {
			return nil, nil, err
		}
		m, err := safetensors.ReadMatrix[float64](r, name)
		if err != nil {
			return nil, nil, err
		}
		ts, ms = append(ts, t), append(ms, m)
	}
	return ts, ms, nil
}

// readLogits0 reads a finished stage's task-0 logits.
func readLogits0(dir string) ([]float32, error) {
	r, err := safetensors.Open(filepath.Join(dir, stageLogitsFile))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Float32s("task0.logits")
}

// writeRunDir writes the run directory of a finished sequence.
func (r *continualRun) writeRunDir(res ContinualResult, baseLogits []float32, probes []safetensors.Tensor, stages []stageRecord) error {
	dir := r.cfg.RunDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	layers := stages[0].Layers
	pre, w0, err := layerWeights(r.pre.ModelPath, layers)
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	var svd []safetensors.Tensor
	m := continualManifest{Name: res.Label, Method: r.cfg.Method}
	window := r.cfg.AdapterConfig(1).IsWindow()
	if r.cfg.AdapterConfig(1).IsAdapter() {
		m.Rank = r.cfg.Rank
	}
	for i, l := range layers {
		f, err := lowrank.ThinSVD(w0[i])
		if err != nil {
			return fmt.Errorf("run dir: layer %q: %w", l.Name, err)
		}
		svd = append(svd,
			safetensors.FromMatrix(l.Name+".U", toFloat32(f.U)),
			safetensors.FromFloats(l.Name+".S", []int{len(f.S)}, f.S),
			safetensors.FromMatrix(l.Name+".V", toFloat32(f.V)))
		rl := runLayer{Name: l.Name}
		if window {
			rl.Window = &runWindow{Start: l.Start, Rank: l.Rank}
		}
		m.Layers = append(m.Layers, rl)
	}
	last := stages[len(stages)-1]
	fin, _, err := layerWeights(last.model(), layers)
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	t0 := r.tasks[0]
	n := t0.test.Len()
	labels := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(labels[4*i:], uint32(t0.test.label(i)))
	}
	finalLogits, err := readLogits0(last.dir)
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	eval := []safetensors.Tensor{
		safetensors.FromRaw("labels", safetensors.I32, []int{n}, labels),
		safetensors.FromFloats("base.logits", []int{n, t0.classes}, baseLogits),
		safetensors.FromFloats("finetuned.logits", []int{n, t0.classes}, finalLogits),
	}
	for _, f := range []struct {
		name string
		ts   []safetensors.Tensor
	}{{RunPretrainedFile, pre}, {RunFinetunedFile, fin}, {RunSVDFile, svd}, {RunProbesFile, probes}, {RunEvalFile, eval}} {
		if len(f.ts) == 0 {
			continue
		}
		if err := safetensors.WriteFile(filepath.Join(dir, f.name), f.ts, nil); err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
	}

	// One checkpoint per stage.
	step := 0
	for _, st := range stages {
		step += st.Steps
		rel := filepath.Join("checkpoints", strconv.Itoa(step))
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
		ws, _, err := layerWeights(st.model(), layers)
		if err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
		z, err := readLogits0(st.dir)
		if err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
		if err := safetensors.WriteFile(filepath.Join(dir, rel, RunFinetunedFile), ws, nil); err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
		if err := safetensors.WriteFile(filepath.Join(dir, rel, RunEvalFile),
			[]safetensors.Tensor{safetensors.FromFloats("finetuned.logits", []int{n, t0.classes}, z)}, nil); err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
		m.Checkpoints = append(m.Checkpoints, runCheckpoint{Step: step, Dir: rel,
			Metrics: &runMetrics{AccuracyAfter: ptr(st.Accuracy[0] / 100)}})
	}

	kl, err := MeanKL(baseLogits, finalLogits, t0.classes)
	if err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	m.Metrics = &runMetrics{AccuracyBefore: ptr(res.Accuracy[0][0] / 100),
		AccuracyAfter: ptr(res.Accuracy[len(res.Accuracy)-1][0] / 100), MeanKL: ptr(kl)}
	T := len(res.Accuracy)
	m.Continual = &continualSection{Tasks: res.Tasks, Accuracy: make([][]*float64, T)}
	for i, row := range res.Accuracy {
		m.Continual.Accuracy[i] = make([]*float64, T)
		for j, v := range row {
			m.Continual.Accuracy[i][j] = ptr(v / 100)
		}
	}
	if err := writeJSON(filepath.Join(dir, RunManifestFile), m); err != nil {
		return err
	}
	res.RunDir = dir
	return writeJSON(filepath.Join(dir, RunResultFile), struct {
		Config ContinualConfig `json:"config"`
		Result ContinualResult `json:"result"`
	}{r.cfg, res})
}
