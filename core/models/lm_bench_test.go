package models_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/prism-lora/prism/core/models"
)

// benchLMStep times one AdamW step of the LM's token cross-entropy on a
// batch of random tokens, every variable trainable.
func benchLMStep(b *testing.B, c models.LMConfig, batch int) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := randomTokens(rng, c.Vocab, batch, c.Context)
	y := randomTokens(rng, c.Vocab, batch, c.Context)
	ctx := context.New()
	opt := optimizers.Adam().WeightDecay(0.01).Done()
	step := context.MustNewExec(testBackend, ctx, func(ctx *context.Context, x, y *Node) *Node {
		loss := models.TokenCrossEntropy(models.LM(ctx, c, models.Run{}, x), y)
		opt.UpdateGraph(ctx, x.Graph(), loss)
		return loss
	})
	for range 2 { // compile and warm up
		if _, err := step.Exec(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := step.Exec(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/step")
	b.ReportMetric(float64(batch*c.Context)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkLMStep: the LM's full training step at a few sizes (batch 32).
func BenchmarkLMStep(b *testing.B) {
	for _, s := range []struct{ width, depth, context, batch int }{
		{64, 2, 64, 32}, {96, 3, 64, 32}, {128, 4, 128, 32},
	} {
		c := models.DefaultLM()
		c.Width, c.Depth, c.Context, c.MLPDim = s.width, s.depth, s.context, 4*s.width
		b.Run(fmt.Sprintf("d%d_L%d_T%d_B%d", s.width, s.depth, s.context, s.batch), func(b *testing.B) { benchLMStep(b, c, s.batch) })
	}
}
