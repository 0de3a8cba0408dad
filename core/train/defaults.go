package train

import (
	"fmt"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
)

// Default tasks of the vision experiment (DESIGN.md §3).
const (
	DefaultTaskA = "mnist"
	DefaultTaskB = "fashion-mnist"
)

// ModelSpec chooses an architecture by name; the input shape comes from the
// task's dataset.
type ModelSpec struct {
	// Kind is "vit" (default) or "mlp".
	Kind string `json:"kind"`
	// ViT sizes the transformer; zero fields take models.DefaultViT's
	// values. ImageSize and Channels come from the data.
	ViT models.ViTConfig `json:"vit"`
	// MLPHidden are the MLP's hidden widths; empty means [256].
	MLPHidden []int `json:"mlp_hidden,omitempty"`
}

// Network builds the architecture for examples of inputShape.
func (m ModelSpec) Network(inputShape []int) (Network, error) {
	switch m.Kind {
	case "", "vit":
		if len(inputShape) != 3 || inputShape[0] != inputShape[1] {
			return Network{}, fmt.Errorf("vit: examples of shape %v are not square images [S, S, C]", inputShape)
		}
		c := models.DefaultViT()
		v := m.ViT
		if v.PatchSize > 0 {
			c.PatchSize = v.PatchSize
		}
		if v.Width > 0 {
			c.Width = v.Width
		}
		if v.Depth > 0 {
			c.Depth = v.Depth
		}
		if v.Heads > 0 {
			c.Heads = v.Heads
		}
		if v.MLPDim > 0 {
			c.MLPDim = v.MLPDim
		}
		if v.LayerNormEpsilon > 0 {
			c.LayerNormEpsilon = v.LayerNormEpsilon
		}
		c.DType = v.DType
		c.ImageSize, c.Channels = inputShape[0], inputShape[2]
		return ViTNetwork(c)
	case "mlp":
		hidden := m.MLPHidden
		if len(hidden) == 0 {
			hidden = []int{256}
		}
		size := 1
		for _, d := range inputShape {
			size *= d
		}
		sizes := append(append([]int{size}, hidden...), 1)
		return MLPNetwork(models.MLPConfig{Sizes: sizes}, inputShape)
	}
	return Network{}, fmt.Errorf("unknown model %q (expected vit or mlp)", m.Kind)
}

// DefaultPretrainHyper is the pretraining of the default ViT on MNIST
// (≥ 97% test accuracy; see docs/training.md for the measured numbers).
func DefaultPretrainHyper() Hyper {
	return Hyper{Epochs: 2, BatchSize: 64, LearningRate: 1.5e-3, WeightDecay: 0.05, Warmup: 0.05, Clip: 1, Seed: 1}
}

// DefaultFinetuneHyper is the fine-tuning default.
func DefaultFinetuneHyper() Hyper {
	return Hyper{Epochs: 2, BatchSize: 128, LearningRate: 1e-3, WeightDecay: 0, Warmup: 0.05, Clip: 1, Seed: 1}
}

// Quick-mode subsets: the first N examples of a fixed permutation of each split.
const (
	QuickPretrainTrain = 12000
	QuickPretrainTest  = 2000
	QuickFinetuneTrain = 6000
	QuickFinetuneTest  = 2000
	QuickOldTest       = 2000
)

// DefaultPretrain is the pretraining configuration of net on task; quick
// trains 2 epochs on a subset in batches of 128 at a higher learning rate
// (4e-3).
func DefaultPretrain(net Network, task string, quick bool) PretrainConfig {
	c := PretrainConfig{Network: net, Task: task, Hyper: DefaultPretrainHyper()}
	if quick {
		c.TrainSubset, c.TestSubset = QuickPretrainTrain, QuickPretrainTest
		c.Hyper.Epochs, c.Hyper.BatchSize, c.Hyper.LearningRate = 2, 128, 4e-3
	}
	return c
}

// DefaultFinetune is the fine-tuning configuration of method on task after
// pre (rank 8, α = 16, the middle window for "window"); quick trains one
// epoch on subsets at a higher learning rate (3e-3).
func DefaultFinetune(pre PretrainConfig, task, method string, quick bool) FinetuneConfig {
	c := FinetuneConfig{
		Pretrain: pre, Task: task, Method: method, Rank: 8, Alpha: 16,
		Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0.5},
		Hyper:  DefaultFinetuneHyper(),
	}
	if quick {
		c.TrainSubset, c.TestSubset, c.OldTestSubset = QuickFinetuneTrain, QuickFinetuneTest, QuickOldTest
		c.Hyper.Epochs, c.Hyper.LearningRate = 1, 3e-3
	}
	return c
}
