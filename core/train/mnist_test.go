package train

import (
	"context"
	"testing"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/models"
)

// TestMNISTToFashionSmoke is the real vision pair in small mode: a small ViT
// from core/models pretrained on 3,000 MNIST images, then fine-tuned on
// 3,000 Fashion-MNIST images with the middle window and with full
// fine-tuning.
func TestMNISTToFashionSmoke(t *testing.T) {
	open := testOpen(t)
	if _, err := open(context.Background(), "mnist"); err != nil {
		t.Fatal(err)
	}
	if _, err := open(context.Background(), "fashion-mnist"); err != nil {
		t.Fatal(err)
	}
	net, err := ModelSpec{Kind: "vit", ViT: models.ViTConfig{PatchSize: 7, Width: 32, Depth: 1, Heads: 2, MLPDim: 64}}.Network([]int{28, 28, 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(net.Layers) != 5 || net.Layers[1].Name != "blocks.0.attn.qkv" || net.Layers[1].Out != 96 {
		t.Fatalf("ViT layers %+v", net.Layers)
	}
	pre := PretrainConfig{Network: net, Task: "mnist", TrainSubset: 3000, TestSubset: 1000,
		Hyper: Hyper{Epochs: 5, BatchSize: 64, LearningRate: 5e-3, WeightDecay: 0.01, Warmup: 0.05, Clip: 1, Seed: 1}}
	cache := t.TempDir()
	for _, method := range []string{adapter.MethodMid, adapter.MethodFull} {
		cfg := FinetuneConfig{Pretrain: pre, Task: "fashion-mnist", Method: method, Rank: 4, Alpha: 8,
			TrainSubset: 3000, TestSubset: 1000, OldTestSubset: 1000,
			Hyper: Hyper{Epochs: 2, BatchSize: 64, LearningRate: 5e-3, Warmup: 0.05, Clip: 1, Seed: 1}}
		res, err := Finetune(context.Background(), cfg, Options{CacheDir: cache, Open: open, Quiet: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: MNIST %.1f%% → %.1f%%, Fashion %.1f%%, KL %.3f, trainable %d, %s", res.Label,
			res.TaskAAccuracyBefore, res.TaskAAccuracyAfter, res.TaskBAccuracy, res.MeanKL, res.TrainableParams, res.TrainTime)
		if res.TaskAAccuracyBefore < 60 || res.TaskBAccuracy < 50 {
			t.Errorf("%s: MNIST %.1f%%, Fashion %.1f%%: not learning", method, res.TaskAAccuracyBefore, res.TaskBAccuracy)
		}
	}
}
