package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

// Run directory layout (the format core/analysis reads; see
// docs/training.md):
//
//	run.json                        manifest: name, method, rank, window, layers (name and
//	                                resolved window), forgetting metrics, checkpoints
//	result.json                     the full Result and configuration of the run
//	weights_pretrained.safetensors  W₀ of every adapted layer, [out, in], the model's dtype
//	weights_finetuned.safetensors   merged W₁ (Wres + scale·B·A; DoRA's rescaled form), F64
//	svd.safetensors                 NAME.U [out, q] F32, NAME.S [q] F64, NAME.V [in, q] F32:
//	                                the SVD of W₀ computed at initialisation
//	probes.safetensors              NAME [N·T, in] F32: the layer's inputs in the pretrained
//	                                model on the first ProbeExamples task-A test images
//	                                (T tokens per image; 1 for an MLP)
//	eval.safetensors                labels [N] I32, base.logits [N, C] F32, finetuned.logits
//	                                [N, C] F32 on task A's test images (the old head)
//	adapters.safetensors            adapter methods: the trained and initial lora_A/lora_B (and
//	                                DoRA's magnitude) of every adapted layer and the new head
//	                                (core/adapter/peft's WriteTrained; `prism export peft` reads it)
//	checkpoints/STEP/               with RunDirEpochs: weights_finetuned.safetensors and
//	                                eval.safetensors (finetuned.logits) after each epoch
const (
	RunManifestFile   = "run.json"
	RunResultFile     = "result.json"
	RunPretrainedFile = "weights_pretrained.safetensors"
	RunFinetunedFile  = "weights_finetuned.safetensors"
	RunSVDFile        = "svd.safetensors"
	RunProbesFile     = "probes.safetensors"
	RunEvalFile       = "eval.safetensors"
	RunAdaptersFile   = "adapters.safetensors"
)

// runManifest is run.json (core/analysis/rundir's Manifest).
type runManifest struct {
	Name        string          `json:"name,omitempty"`
	Method      string          `json:"method,omitempty"`
	Rank        int             `json:"rank,omitempty"`
	Layers      []runLayer      `json:"layers"`
	Metrics     *runMetrics     `json:"metrics,omitempty"`
	Checkpoints []runCheckpoint `json:"checkpoints,omitempty"`
}

type runLayer struct {
	Name   string     `json:"name"`
	Window *runWindow `json:"window,omitempty"`
}

type runWindow struct {
	Start int `json:"start"`
	Rank  int `json:"rank"`
}

// runMetrics are fractions (accuracies) and nats, as the analysis expects.
type runMetrics struct {
	AccuracyBefore *float64 `json:"accuracy_before,omitempty"`
	AccuracyAfter  *float64 `json:"accuracy_after,omitempty"`
	MeanKL         *float64 `json:"mean_kl,omitempty"`
}

type runCheckpoint struct {
	Step    int         `json:"step"`
	Dir     string      `json:"dir"`
	Metrics *runMetrics `json:"metrics,omitempty"`
}

// runDirWriter writes a fine-tuning run's analysis files.
type runDirWriter struct {
	dir        string
	cfg        FinetuneConfig
	adapted    *adapter.Adapted
	ctx        *mlctx.Context // model scope
	testA      examples
	classesA   int
	baseLogits []float32
	probes     []safetensors.Tensor
}

func ptr(x float64) *float64 { return &x }

// captureProbes returns the inputs of the assigned layers in the network
// of root (before adapters are attached: the pretrained model) on the first
// n task-A test images (n = 0: 256), one [N·T, in] tensor per layer.
func captureProbes(b backends.Backend, root *mlctx.Context, net Network, layers []adapter.Assignment, testA examples,
	classesA, n int) ([]safetensors.Tensor, error) {
	if n == 0 {
		n = 256
	}
	n = min(n, testA.Len())
	in := map[string]int{}
	for _, a := range layers {
		in[a.Layer.Name] = a.Layer.In
	}
	var names []string
	exec, err := mlctx.NewExec(b, root, func(ctx *mlctx.Context, x *Node) []*Node {
		var probes []*Node
		names = names[:0]
		probe := func(ctx *mlctx.Context, name string, x *Node, outDim int) *Node {
			if width, ok := in[name]; ok {
				names = append(names, name)
				probes = append(probes, ConvertDType(Reshape(x, -1, width), dtypes.Float32))
			}
			return net.Dense(ctx, name, x, outDim)
		}
		logits := net.logits(ctx.In(ModelScope), probe, x, HeadA, classesA)
		// The logits go out too: GoMLX v0.25's simplego panics ("index out
		// of range") on a graph whose outputs leave parameters unused.
		return append(probes, logits)
	})
	if err != nil {
		return nil, err
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	x, _ := testA.batch(order, n)
	outs, err := exec.Exec(x)
	if err != nil {
		return nil, fmt.Errorf("run dir: capturing probes: %w", err)
	}
	ts := make([]safetensors.Tensor, len(names))
	for i, t := range outs[:len(names)] {
		ts[i] = safetensors.FromFloats(names[i], t.Shape().Dimensions, tensors.MustCopyFlatData[float32](t))
	}
	return ts, nil
}

// mergedTensors returns every adapted layer's merged weight as F64 tensors.
func (w *runDirWriter) mergedTensors() ([]safetensors.Tensor, error) {
	var ts []safetensors.Tensor
	for _, l := range w.adapted.Layers() {
		m, err := l.Merged(w.ctx)
		if err != nil {
			return nil, err
		}
		ts = append(ts, safetensors.FromMatrix(l.Name, m))
	}
	return ts, nil
}

// epoch stores the merged weights and task-A logits after an epoch.
func (w *runDirWriter) epoch(step int, _ EpochStats, logits map[string][]float32) error {
	dir := filepath.Join(w.dir, "checkpoints", strconv.Itoa(step))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ts, err := w.mergedTensors()
	if err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(dir, RunFinetunedFile), ts, nil); err != nil {
		return err
	}
	z := logits["a_acc"]
	return safetensors.WriteFile(filepath.Join(dir, RunEvalFile),
		[]safetensors.Tensor{safetensors.FromFloats("finetuned.logits", []int{len(z) / w.classesA, w.classesA}, z)}, nil)
}

// write stores everything at the end of the run.
func (w *runDirWriter) write(_ context.Context, res Result, afterLogits []float32, stepsPerEpoch int) error {
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	var pre, svd []safetensors.Tensor
	m := runManifest{Name: res.Label, Method: w.cfg.Method}
	if w.cfg.AdapterConfig().IsAdapter() {
		m.Rank = w.cfg.Rank
	}
	for _, l := range w.adapted.Layers() {
		if l.DType.Size() == 4 {
			pre = append(pre, safetensors.FromMatrix(l.Name, toFloat32(l.Pretrained)))
		} else {
			pre = append(pre, safetensors.FromMatrix(l.Name, l.Pretrained))
		}
		if l.SVD == nil {
			return fmt.Errorf("run dir: layer %q has no SVD (attach with KeepSVD)", l.Name)
		}
		svd = append(svd,
			safetensors.FromMatrix(l.Name+".U", toFloat32(l.SVD.U)),
			safetensors.FromFloats(l.Name+".S", []int{len(l.SVD.S)}, l.SVD.S),
			safetensors.FromMatrix(l.Name+".V", toFloat32(l.SVD.V)))
		rl := runLayer{Name: l.Name}
		if s, r, ok := l.Window(); ok {
			rl.Window = &runWindow{Start: s, Rank: r}
		}
		m.Layers = append(m.Layers, rl)
	}
	fin, err := w.mergedTensors()
	if err != nil {
		return err
	}
	n := w.testA.Len()
	labels := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(labels[4*i:], uint32(w.testA.label(i)))
	}
	eval := []safetensors.Tensor{
		safetensors.FromRaw("labels", safetensors.I32, []int{n}, labels),
		safetensors.FromFloats("base.logits", []int{n, w.classesA}, w.baseLogits),
		safetensors.FromFloats("finetuned.logits", []int{n, w.classesA}, afterLogits),
	}
	for _, f := range []struct {
		name string
		ts   []safetensors.Tensor
	}{{RunPretrainedFile, pre}, {RunFinetunedFile, fin}, {RunSVDFile, svd}, {RunProbesFile, w.probes}, {RunEvalFile, eval}} {
		if len(f.ts) == 0 {
			continue
		}
		if err := safetensors.WriteFile(filepath.Join(w.dir, f.name), f.ts, nil); err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
	}
	if err := w.writeAdapters(res); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	m.Metrics = &runMetrics{AccuracyBefore: ptr(res.TaskAAccuracyBefore / 100), AccuracyAfter: ptr(res.TaskAAccuracyAfter / 100),
		MeanKL: ptr(res.MeanKL)}
	if w.cfg.RunDirEpochs {
		for _, e := range res.Curves {
			step := e.Epoch * stepsPerEpoch
			dir := filepath.Join("checkpoints", strconv.Itoa(step))
			if _, err := os.Stat(filepath.Join(w.dir, dir, RunFinetunedFile)); err != nil {
				continue
			}
			m.Checkpoints = append(m.Checkpoints, runCheckpoint{Step: step, Dir: dir,
				Metrics: &runMetrics{AccuracyAfter: ptr(e.Eval["a_acc"] / 100)}})
		}
	}
	if err := writeJSON(filepath.Join(w.dir, RunManifestFile), m); err != nil {
		return err
	}
	return writeJSON(filepath.Join(w.dir, RunResultFile), struct {
		Config FinetuneConfig `json:"config"`
		Result Result         `json:"result"`
	}{w.cfg, res})
}

// toFloat32 rounds a float64 matrix to float32.
func toFloat32(m lowrank.Matrix[float64]) lowrank.Matrix[float32] {
	out := lowrank.NewMatrix[float32](m.Rows, m.Cols)
	for i, v := range m.Data {
		out.Data[i] = float32(v)
	}
	return out
}

// writeJSON writes v indented to path through a temporary file renamed into place.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, append(data, '\n')); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
