package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/models"
)

// SampleConfig says how to generate a text sample from a language model.
type SampleConfig struct {
	// Prompt is the text the sample continues (its bytes are the first
	// tokens; it must not be empty).
	Prompt string `json:"prompt"`
	// Length is the number of bytes generated after the prompt.
	Length int `json:"length"`
	// Temperature divides the logits before sampling; 0 means greedy
	// (always the most likely byte).
	Temperature float64 `json:"temperature"`
	// Seed drives the sampling (the same seed and model give the same text).
	Seed uint64 `json:"seed"`
}

// DefaultSample is the sample the text experiment shows before and after
// fine-tuning: 240 bytes at temperature 0.8 after a prompt that belongs to
// neither corpus in particular.
func DefaultSample() SampleConfig {
	return SampleConfig{Prompt: "When she came to the house, ", Length: 240, Temperature: 0.8, Seed: 1}
}

// Validate checks the sample settings.
func (s SampleConfig) Validate() error {
	switch {
	case s.Prompt == "":
		return fmt.Errorf("text sample: empty prompt")
	case s.Length < 0:
		return fmt.Errorf("text sample: length %d, want ≥ 0", s.Length)
	case !(s.Temperature >= 0) || math.IsInf(s.Temperature, 0):
		return fmt.Errorf("text sample: temperature %v, want ≥ 0 (0 = greedy)", s.Temperature)
	}
	return nil
}

// GenerateText continues s.Prompt by s.Length tokens with the language model
// whose variables are in ctx's model scope, computing its linear layers with
// linear (models.Dense, or an adapter's Linear). Each new token is drawn
// from softmax(z/temperature) of the logits z at the last position (or is
// their arg-max at temperature 0), given the last Context tokens.
//
// GoMLX's pure-Go backend has no DynamicSlice (no key/value cache), so every
// step runs the model on a whole window of Context tokens, the text so far
// left-aligned and zero-padded on the right; the model is causal, so the
// padding does not change the logits at the last real position. One compiled
// graph serves every step.
func GenerateText(b backends.Backend, ctx *mlctx.Context, model models.LMConfig, linear adapter.LinearFunc, s SampleConfig) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := model.Validate(); err != nil {
		return nil, err
	}
	text := []byte(s.Prompt)
	for i, c := range text {
		if int(c) >= model.Vocab {
			return nil, fmt.Errorf("text sample: prompt byte %d (%#x) is outside the vocabulary of %d", i, c, model.Vocab)
		}
	}
	exec, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, x *Node) *Node {
		return ConvertDType(models.LM(ctx.In(ModelScope), model, models.Run{Linear: linear}, x), dtypes.Float32)
	})
	if err != nil {
		return nil, err
	}
	t, v := model.Context, model.Vocab
	rng := rand.New(rand.NewPCG(s.Seed, 0x5a3b1e))
	window := make([]int32, t)
	probs := make([]float64, v)
	for range s.Length {
		start := max(0, len(text)-t)
		n := len(text) - start
		clear(window)
		for i, c := range text[start:] {
			window[i] = int32(c)
		}
		res, err := exec.Exec(tensors.FromFlatDataAndDimensions(window, 1, t))
		if err != nil {
			return nil, fmt.Errorf("text sample: %w", err)
		}
		z := tensors.MustCopyFlatData[float32](res[0])[(n-1)*v : n*v]
		text = append(text, byte(pick(z, s.Temperature, rng, probs)))
	}
	return text, nil
}

// pick draws a token from softmax(z/temperature), or returns arg-max z
// (the first on ties) at temperature 0. probs is scratch space of len(z).
func pick(z []float32, temperature float64, rng *rand.Rand, probs []float64) int {
	best := 0
	for i, x := range z {
		if x > z[best] {
			best = i
		}
	}
	if temperature == 0 {
		return best
	}
	top := float64(z[best])
	var sum float64
	for i, x := range z {
		probs[i] = math.Exp((float64(x) - top) / temperature)
		sum += probs[i]
	}
	u := rng.Float64() * sum
	for i, p := range probs {
		if u < p {
			return i
		}
		u -= p
	}
	return best
}

// Printable returns generated text ready to show: bytes that are not valid
// UTF-8 and control characters other than line breaks and tabs become
// U+FFFD (a byte-level model may emit any byte).
func Printable(text string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(text, "\uFFFD"))
}
