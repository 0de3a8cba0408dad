package rundir

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

// LayerData is what a run stores for one adapted layer.
type LayerData[T lowrank.Float] struct {
	// Layer names the layer and gives its window (written to run.json).
	Layer Layer
	// Pretrained is W₀ and Finetuned the merged W₁ (m×n).
	Pretrained, Finetuned lowrank.Matrix[T]
	// SVD is the factorisation computed at initialisation (Offset 0).
	SVD lowrank.Factors[T]
	// Probes are the layer's inputs on old-task examples (N×n); the zero
	// Matrix stores none.
	Probes lowrank.Matrix[T]
}

// Eval is an old-task evaluation of the pretrained ("base") and the
// fine-tuned model on the same examples (row-major logits). Either part may
// be left empty.
type Eval struct {
	Labels                  []int
	Classes                 int
	BaseLogits, Finetuned   []float32 // N×Classes
	TextTargets             []int
	Vocab                   int
	BaseText, FinetunedText []float32 // T×Vocab
}

// Write writes a run directory: the manifest (with m.Layers taken from
// layers), the pretrained and fine-tuned weights, the SVD, the probes of
// the layers that have them, and eval when not nil.
func Write[T lowrank.Float](dir string, m Manifest, layers []LayerData[T], eval *Eval) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m.Layers = nil
	var pre, fine, svd, probes []safetensors.Tensor
	for _, l := range layers {
		name := l.Layer.Name
		if l.SVD.Offset != 0 {
			return fmt.Errorf("layer %q: SVD factors start at component %d; store the leading components", name, l.SVD.Offset)
		}
		m.Layers = append(m.Layers, l.Layer)
		pre = append(pre, safetensors.FromMatrix(l.Layer.tensorName(), l.Pretrained))
		fine = append(fine, safetensors.FromMatrix(l.Layer.tensorName(), l.Finetuned))
		svd = append(svd,
			safetensors.FromMatrix(name+SuffixU, l.SVD.U),
			safetensors.FromFloats(name+SuffixS, []int{len(l.SVD.S)}, l.SVD.S),
			safetensors.FromMatrix(name+SuffixV, l.SVD.V))
		if len(l.Probes.Data) > 0 {
			probes = append(probes, safetensors.FromMatrix(name, l.Probes))
		}
	}
	writes := []struct {
		file    string
		tensors []safetensors.Tensor
	}{{PretrainedFile, pre}, {FinetunedFile, fine}, {SVDFile, svd}, {ProbesFile, probes}}
	for _, w := range writes {
		if len(w.tensors) == 0 {
			continue
		}
		if err := safetensors.WriteFile(filepath.Join(dir, w.file), w.tensors, nil); err != nil {
			return err
		}
	}
	if eval != nil {
		if err := writeEval(filepath.Join(dir, EvalFile), eval, true); err != nil {
			return err
		}
	}
	return WriteManifest(dir, m)
}

// WriteCheckpoint writes the fine-tuned weights (and the fine-tuned part of
// eval, when not nil) of a checkpoint into dir/checkpoints/STEP and returns
// its manifest entry, to be listed in Manifest.Checkpoints.
func WriteCheckpoint[T lowrank.Float](dir string, step int, finetuned map[string]lowrank.Matrix[T], eval *Eval) (Checkpoint, error) {
	rel := filepath.Join("checkpoints", fmt.Sprintf("%08d", step))
	abs := filepath.Join(dir, rel)
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return Checkpoint{}, err
	}
	var tensors []safetensors.Tensor
	for name, w := range finetuned {
		tensors = append(tensors, safetensors.FromMatrix(name, w))
	}
	if err := safetensors.WriteFile(filepath.Join(abs, FinetunedFile), tensors, nil); err != nil {
		return Checkpoint{}, err
	}
	if eval != nil {
		if err := writeEval(filepath.Join(abs, EvalFile), eval, false); err != nil {
			return Checkpoint{}, err
		}
	}
	return Checkpoint{Step: step, Dir: rel}, nil
}

// writeEval writes the logits (with labels and base logits when withBase).
func writeEval(file string, e *Eval, withBase bool) error {
	var ts []safetensors.Tensor
	ints := func(name string, v []int) safetensors.Tensor {
		raw := make([]byte, 8*len(v))
		for i, x := range v {
			u := uint64(int64(x))
			for b := 0; b < 8; b++ {
				raw[8*i+b] = byte(u >> (8 * b))
			}
		}
		return safetensors.FromRaw(name, safetensors.I64, []int{len(v)}, raw)
	}
	logits := func(name string, z []float32, cols int) (safetensors.Tensor, error) {
		if cols <= 0 || len(z)%cols != 0 {
			return safetensors.Tensor{}, fmt.Errorf("%s: %d logits are not rows of %d", name, len(z), cols)
		}
		return safetensors.FromFloats(name, []int{len(z) / cols, cols}, z), nil
	}
	add := func(name string, z []float32, cols int) error {
		if len(z) == 0 {
			return nil
		}
		t, err := logits(name, z, cols)
		if err != nil {
			return err
		}
		ts = append(ts, t)
		return nil
	}
	if withBase {
		if len(e.Labels) > 0 {
			ts = append(ts, ints(EvalLabels, e.Labels))
		}
		if len(e.TextTargets) > 0 {
			ts = append(ts, ints(EvalTextTargets, e.TextTargets))
		}
		if err := add(EvalBaseLogits, e.BaseLogits, e.Classes); err != nil {
			return err
		}
		if err := add(EvalBaseTextLogits, e.BaseText, e.Vocab); err != nil {
			return err
		}
	}
	if err := add(EvalFinetunedLogits, e.Finetuned, e.Classes); err != nil {
		return err
	}
	if err := add(EvalFinetunedTextLogits, e.FinetunedText, e.Vocab); err != nil {
		return err
	}
	if len(ts) == 0 {
		return nil
	}
	return safetensors.WriteFile(file, ts, nil)
}
