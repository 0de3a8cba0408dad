// Package rundir defines the on-disk layout of a fine-tuning run that
// `prism analyze` reads, reads it one layer at a time into an analysis.Run,
// and writes it (for trainers and tests).
//
// A run directory holds
//
//	run.json                        the Manifest (required)
//	weights_pretrained.safetensors  W₀ of every adapted layer, [m, n] (out×in), F32/F64/F16/BF16
//	weights_finetuned.safetensors   W₁ = Wres + scale·B′·A′ merged, same tensor names and shapes
//	svd.safetensors                 the SVD computed at initialisation, per layer NAME:
//	                                  NAME.U [m, q], NAME.S [q] (descending), NAME.V [n, q]
//	                                  (q = min(m, n), or the leading q components of a
//	                                  randomized SVD; V holds right singular vectors, not Vᵀ)
//	probes.safetensors              optional: NAME [N, n], the layer's inputs on old-task examples
//	eval.safetensors                optional: old-task evaluation of the pretrained ("base") and the
//	                                  fine-tuned model on the same examples:
//	                                  labels [N] (integer dtype), base.logits [N, C], finetuned.logits [N, C];
//	                                  for language models text.targets [T] (integer dtype),
//	                                  base.text_logits [T, V], finetuned.text_logits [T, V]
//	checkpoints/STEP/               optional, listed in run.json: weights_finetuned.safetensors and
//	                                  eval.safetensors (finetuned.* only) after STEP training steps
//
// Tensors are looked up by the layer's Tensor name in the weight files (the
// layer Name when empty) and by its Name in svd.safetensors and
// probes.safetensors. run.json may point the pretrained weights and the SVD
// at shared files (Files), so runs of one base model need not copy them.
package rundir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/internal/atomicfile"
)

// File names inside a run directory.
const (
	ManifestFile   = "run.json"
	PretrainedFile = "weights_pretrained.safetensors"
	FinetunedFile  = "weights_finetuned.safetensors"
	SVDFile        = "svd.safetensors"
	ProbesFile     = "probes.safetensors"
	EvalFile       = "eval.safetensors"
)

// Tensor names in eval.safetensors.
const (
	EvalLabels              = "labels"
	EvalBaseLogits          = "base.logits"
	EvalFinetunedLogits     = "finetuned.logits"
	EvalTextTargets         = "text.targets"
	EvalBaseTextLogits      = "base.text_logits"
	EvalFinetunedTextLogits = "finetuned.text_logits"
)

// SVD tensor name suffixes in svd.safetensors: NAME.U, NAME.S, NAME.V.
const (
	SuffixU = ".U"
	SuffixS = ".S"
	SuffixV = ".V"
)

// Manifest is run.json.
type Manifest struct {
	// Name labels the run in tables and figures; empty means the
	// directory's base name.
	Name string `json:"name,omitempty"`
	// Method is the adapter method (lora, pissa, milora, mid, window, …).
	Method string `json:"method,omitempty"`
	// Rank and Window give every layer's window when a layer has none of
	// its own: Window is a lowrank window spec ("pissa", "mid", "start=40",
	// "fraction=0.5"), resolved per layer with the layer's shape.
	Rank   int    `json:"rank,omitempty"`
	Window string `json:"window,omitempty"`
	// Layers are the adapted layers, in order.
	Layers []Layer `json:"layers"`
	// Files overrides where files are (paths relative to the run directory).
	Files Files `json:"files,omitempty"`
	// Metrics are the forgetting measured by the trainer, used for values
	// eval.safetensors does not provide.
	Metrics *Metrics `json:"metrics,omitempty"`
	// Checkpoints lists intermediate states along training.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
	// Continual holds the accuracy matrix of a task sequence.
	Continual *Continual `json:"continual,omitempty"`
}

// Continual is the accuracy matrix of a run over a task sequence:
// Accuracy[i][j] is the accuracy (fraction) on task j after training on
// tasks 0…i; null where not measured (above the diagonal). Baseline, when
// given, is each task's accuracy before any training (for forward transfer).
type Continual struct {
	Tasks    []string     `json:"tasks"`
	Accuracy [][]*float64 `json:"accuracy"`
	Baseline []float64    `json:"baseline,omitempty"`
}

// Layer is one adapted layer of a run.
type Layer struct {
	// Name identifies the layer (and its tensors in svd/probes files).
	Name string `json:"name"`
	// Tensor is the weight's name in the weight files; empty means Name.
	Tensor string `json:"tensor,omitempty"`
	// Window is the fine-tuned window; nil means the manifest's Rank and
	// Window (and no window when those are unset, e.g. plain LoRA).
	Window *Window `json:"window,omitempty"`
}

// Window is a resolved window of components [Start, Start+Rank).
type Window struct {
	Start int `json:"start"`
	Rank  int `json:"rank"`
}

// Files overrides file locations (relative to the run directory, or absolute).
type Files struct {
	Pretrained string `json:"pretrained,omitempty"`
	Finetuned  string `json:"finetuned,omitempty"`
	SVD        string `json:"svd,omitempty"`
	Probes     string `json:"probes,omitempty"`
	Eval       string `json:"eval,omitempty"`
}

// Metrics are forgetting values measured elsewhere (fractions, nats, bits);
// pointers distinguish unknown from zero.
type Metrics struct {
	AccuracyBefore *float64 `json:"accuracy_before,omitempty"`
	AccuracyAfter  *float64 `json:"accuracy_after,omitempty"`
	MeanKL         *float64 `json:"mean_kl,omitempty"`
	BPCBefore      *float64 `json:"bpc_before,omitempty"`
	BPCAfter       *float64 `json:"bpc_after,omitempty"`
}

// Checkpoint is an intermediate state: Dir (relative to the run directory)
// holds weights_finetuned.safetensors and optionally eval.safetensors.
type Checkpoint struct {
	Step    int      `json:"step"`
	Dir     string   `json:"dir"`
	Metrics *Metrics `json:"metrics,omitempty"`
}

// ReadManifest reads and checks dir/run.json.
func ReadManifest(dir string) (Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("run %s: %w (a run directory needs %s; see `prism analyze --help`)", dir, err, ManifestFile)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.check(); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func (m Manifest) check() error {
	if len(m.Layers) == 0 {
		return fmt.Errorf("no layers: \"layers\" must list the adapted layers")
	}
	seen := map[string]bool{}
	for i, l := range m.Layers {
		if l.Name == "" {
			return fmt.Errorf("layer %d has no name", i)
		}
		if seen[l.Name] {
			return fmt.Errorf("layer %q is listed twice", l.Name)
		}
		seen[l.Name] = true
		if w := l.Window; w != nil && (w.Start < 0 || w.Rank < 1) {
			return fmt.Errorf("layer %q: window start %d rank %d: want start ≥ 0 and rank ≥ 1", l.Name, w.Start, w.Rank)
		}
	}
	if m.Window != "" {
		if _, err := lowrank.ParseWindowSpec(m.Window); err != nil {
			return err
		}
		if m.Rank < 1 {
			return fmt.Errorf("window %q needs \"rank\" ≥ 1", m.Window)
		}
	}
	for i, c := range m.Checkpoints {
		if c.Dir == "" {
			return fmt.Errorf("checkpoint %d (step %d) has no dir", i, c.Step)
		}
	}
	return nil
}

// WriteManifest writes dir/run.json (atomically), creating dir.
func WriteManifest(dir string, m Manifest) error {
	if err := m.check(); err != nil {
		return fmt.Errorf("run %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ManifestFile), append(data, '\n'))
}

// path resolves a file of the run: the override when set, else name.
func path(dir, override, name string) string {
	switch {
	case override == "":
		return filepath.Join(dir, name)
	case filepath.IsAbs(override):
		return override
	}
	return filepath.Join(dir, override)
}

// tensorName returns the layer's weight tensor name.
func (l Layer) tensorName() string {
	if l.Tensor != "" {
		return l.Tensor
	}
	return l.Name
}

// window resolves the layer's window for an m×n weight.
func (m Manifest) window(l Layer, rows, cols int) (Window, bool, error) {
	if l.Window != nil {
		if l.Window.Start+l.Window.Rank > min(rows, cols) {
			return Window{}, false, fmt.Errorf("layer %q (%d×%d): window [%d, %d) exceeds the %d components",
				l.Name, rows, cols, l.Window.Start, l.Window.Start+l.Window.Rank, min(rows, cols))
		}
		return *l.Window, true, nil
	}
	if m.Window == "" {
		return Window{}, false, nil
	}
	spec, err := lowrank.ParseWindowSpec(m.Window)
	if err != nil {
		return Window{}, false, err
	}
	s, err := spec.Resolve(l.Name, rows, cols, m.Rank)
	if err != nil {
		return Window{}, false, err
	}
	return Window{Start: s, Rank: m.Rank}, true, nil
}
