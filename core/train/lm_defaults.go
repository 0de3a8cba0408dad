package train

import (
	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/models"
)

// Quick-mode subsets of the text experiment, in windows of the model's
// context (64 bytes with models.DefaultLM).
const (
	QuickTextPretrainTrain = 24000
	QuickTextPretrainTest  = 256
	QuickTextFinetuneTrain = 3200
	QuickTextFinetuneTest  = 256
	QuickTextOldTest       = 256
)

// DefaultTextPretrain is the pretraining of model on the King James Bible:
// AdamW at lr 2e-3 (weight decay 0.01, 5% warmup, cosine decay, clipping at
// 1), batches of 32 windows, 2 epochs, four curve points per epoch. quick
// trains one epoch on a subset of QuickTextPretrainTrain windows and
// evaluates on QuickTextPretrainTest.
func DefaultTextPretrain(model models.LMConfig, quick bool) TextPretrainConfig {
	c := TextPretrainConfig{Model: model, Task: DefaultTextTaskA,
		Hyper: Hyper{Epochs: 2, BatchSize: 32, LearningRate: 2e-3, WeightDecay: 0.01, Warmup: 0.05, Clip: 1, Seed: 1}}
	if quick {
		c.TrainSubset, c.TestSubset = QuickTextPretrainTrain, QuickTextPretrainTest
		c.Hyper.Epochs = 1
		c.EvalEvery = 250
	}
	return c
}

// DefaultTextFinetune is the fine-tuning of method on Jane Austen after pre:
// rank 8, α = 16, the middle window for "window", AdamW at lr 1e-3 without
// weight decay (5% warmup, cosine, clipping at 1), batches of 32, one epoch,
// the default sample. quick trains on a subset of QuickTextFinetuneTrain
// windows and evaluates on subsets of both test splits, at lr 3e-3.
func DefaultTextFinetune(pre TextPretrainConfig, method string, quick bool) TextFinetuneConfig {
	c := TextFinetuneConfig{
		Pretrain: pre, Task: DefaultTextTaskB, Method: method, Rank: 8, Alpha: 16,
		Window: lowrank.WindowSpec{Preset: lowrank.WindowFraction, Fraction: 0.5},
		Hyper:  Hyper{Epochs: 1, BatchSize: 32, LearningRate: 1e-3, Warmup: 0.05, Clip: 1, Seed: 1},
		Sample: DefaultSample(),
	}
	if quick {
		c.TrainSubset, c.TestSubset, c.OldTestSubset = QuickTextFinetuneTrain, QuickTextFinetuneTest, QuickTextOldTest
		c.Hyper.LearningRate = 3e-3
		c.EvalEvery = 50
	}
	return c
}
