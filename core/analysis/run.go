package analysis

import (
	"fmt"
	"math"
)

// Run is the analysis of one fine-tuning run: what changed in each adapted
// layer and what the model forgot. Tables and figures are drawn from it.
type Run struct {
	// Name labels the run in tables and figures (e.g. "pissa", "mid s=380").
	Name string
	// Method is the adapter method (lora, pissa, milora, mid, window, …).
	Method string
	// Layers holds one entry per adapted layer, in the run's order.
	Layers []Layer
	// Forgetting summarises the old task before and after fine-tuning.
	Forgetting Forgetting
	// Checkpoints follows the change along training (empty when the run
	// stored no checkpoints).
	Checkpoints []CheckpointSummary
	// Continual holds the metrics of a task sequence (nil for a single
	// fine-tuning).
	Continual *Continual
}

// Continual is a run over a sequence of tasks.
type Continual struct {
	// Tasks names the tasks in training order; Accuracy is R (T×T).
	Tasks    []string
	Accuracy AccuracyMatrix
	// Stages holds ACC, BWT and mean forgetting after each stage.
	Stages []StageSummary
	// ForwardTransfer is FWT (NaN without baselines or the entries above
	// the diagonal).
	ForwardTransfer float64
}

// NewContinual checks r and computes the metrics of every stage; baseline
// (accuracy of each task before any training) may be nil.
func NewContinual(tasks []string, r AccuracyMatrix, baseline []float64) (*Continual, error) {
	if len(tasks) != len(r) {
		return nil, fmt.Errorf("%d task names for a %d-task accuracy matrix", len(tasks), len(r))
	}
	stages, err := r.Trajectory()
	if err != nil {
		return nil, err
	}
	c := &Continual{Tasks: tasks, Accuracy: r, Stages: stages, ForwardTransfer: math.NaN()}
	if baseline != nil {
		fwt, err := r.ForwardTransfer(baseline)
		if err != nil {
			return nil, err
		}
		c.ForwardTransfer = fwt
	}
	return c, nil
}

// Layer is the analysis of one adapted layer.
type Layer struct {
	Name   string
	Weight WeightChange
	// Feature is nil when the run has no probe inputs for the layer.
	Feature *FeatureChange
}

// Forgetting summarises what a run forgot of the old task. Unknown values
// are NaN.
type Forgetting struct {
	// AccuracyBefore and AccuracyAfter are old-task accuracies (fractions)
	// of the pretrained and the fine-tuned model with the old task's head;
	// AccuracyDrop = 100·(before − after) in points.
	AccuracyBefore, AccuracyAfter, AccuracyDrop float64
	// MeanKL is the mean KL(p_base ‖ p_after) on old-task inputs, in nats.
	MeanKL float64
	// BPCBefore and BPCAfter are bits per character on held-out pretraining
	// text (language models); the forgetting is BPCAfter − BPCBefore.
	BPCBefore, BPCAfter float64
}

// UnknownForgetting returns a Forgetting with every value NaN.
func UnknownForgetting() Forgetting {
	nan := math.NaN()
	return Forgetting{nan, nan, nan, nan, nan, nan}
}

// BPCRise returns BPCAfter − BPCBefore.
func (f Forgetting) BPCRise() float64 { return f.BPCAfter - f.BPCBefore }

// CheckpointSummary is the state of a run at one training step: the
// forgetting so far and the weight change of its layers, summed over layers
// as energies (‖diag‖ = sqrt Σ_layers ‖diag_l‖², likewise ‖off‖).
type CheckpointSummary struct {
	Step int
	Forgetting
	DiagNorm, OffNorm float64
}

// SummarizeLayers sums the weight-change energies of layers:
// sqrt(Σ ‖diag_l‖²) and sqrt(Σ ‖off_l‖²).
func SummarizeLayers(layers []Layer) (diag, off float64) {
	for _, l := range layers {
		diag += l.Weight.DiagNorm * l.Weight.DiagNorm
		off += l.Weight.OffNorm * l.Weight.OffNorm
	}
	return math.Sqrt(diag), math.Sqrt(off)
}
