package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/analysis"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/train/adamw"
)

// TextEvalPoint is one point of a language model's training curves, taken
// every EvalEvery steps and after the last one.
type TextEvalPoint struct {
	Step int `json:"step"`
	// Epoch is Step divided by the steps of one epoch (fractional).
	Epoch float64 `json:"epoch"`
	// TrainLoss (nats per token) and TrainAccuracy (next-token top-1, %)
	// are means over the steps since the previous point.
	TrainLoss     float64 `json:"train_loss"`
	TrainAccuracy float64 `json:"train_acc"`
	// Eval holds the evaluations by name: "test_bpc" when pretraining;
	// "b_bpc", "a_bpc" and "a_kl" when fine-tuning.
	Eval map[string]float64 `json:"eval"`
	// LearningRate is the rate of the point's last step.
	LearningRate float64 `json:"learning_rate"`
	// Seconds is the training wall time up to this point.
	Seconds float64 `json:"seconds"`
}

// TextScore is a language model's score on a set of windows.
type TextScore struct {
	// BPC is the mean of −log₂ p(next byte) over every position of every
	// window (analysis.BitsPerCharacter); Accuracy the next-token top-1
	// accuracy (%).
	BPC      float64 `json:"bpc"`
	Accuracy float64 `json:"acc"`
	// KL is the mean over positions of KL(p_base ‖ p) in nats, when base
	// logits were given (else 0).
	KL float64 `json:"kl,omitempty"`
}

// textEvalSpec is an evaluation run at every curve point.
type textEvalSpec struct {
	key   string // name of the bits per character in TextEvalPoint.Eval
	klKey string // name of the KL, when base is set
	data  textWindows
	base  []float32 // the base model's logits on data (nil: no KL)
}

// lmLoop trains a language model's next-token cross-entropy.
type lmLoop struct {
	phase       string
	backend     backends.Backend
	ctx         *mlctx.Context // root; the model lives in ctx.In(ModelScope)
	model       models.LMConfig
	linear      adapter.LinearFunc
	train       textWindows
	evals       []textEvalSpec
	hyper       Hyper
	evalEvery   int    // steps between curve points (0: one per epoch)
	checkpoint  string // state file; "" = none
	every       int    // checkpoint every this many steps (and at each curve point); 0 = curve points only
	fingerprint string
	report      *reporter
	evalBatch   int
	afterStep   func(step int)

	evaluator *mlctx.Exec
	// last holds the last curve point's scores by key (empty when this
	// session reached no point).
	last map[string]TextScore
}

// lmState is what a text checkpoint stores besides the variables.
type lmState struct {
	Fingerprint string          `json:"fingerprint"`
	Step        int             `json:"step"`
	SumLoss     float64         `json:"sum_loss"` // since the last curve point
	SumCorrect  float64         `json:"sum_correct"`
	SumSteps    int             `json:"sum_steps"`
	Curves      []TextEvalPoint `json:"curves"`
	Seconds     float64         `json:"seconds"`
}

// lmLogits is the model's logits: tokens [B, T] → [B, T, V].
func (l *lmLoop) lmLogits(ctx *mlctx.Context, x *Node) *Node {
	return models.LM(ctx.In(ModelScope), l.model, models.Run{Linear: l.linear}, x)
}

// trainStep builds one optimisation step: (x, y, lr) → (loss, correct, the
// optimizer's outputs…); opt.Apply finishes the step with the outputs after
// the first two.
func (l *lmLoop) trainStep() (*mlctx.Exec, *adamw.Optimizer, error) {
	opt := newOptimizer(l.backend, l.hyper)
	exec, err := mlctx.NewExec(l.backend, l.ctx, func(ctx *mlctx.Context, x, y, lr *Node) []*Node {
		logits := l.lmLogits(ctx, x)
		loss := models.TokenCrossEntropy(logits, y)
		pred := ArgMax(logits, -1, dtypes.Int32)
		correct := ReduceAllSum(ConvertDType(Equal(pred, y), dtypes.Float64))
		return append([]*Node{ConvertDType(loss, dtypes.Float64), correct}, opt.UpdateGraph(ctx, loss, lr)...)
	})
	return exec, opt, err
}

// textLogits runs the model (in ctx, with linear) on every window of data in
// padded batches of size batch and hands each batch's logits (rows =
// positions, V values each, float32) to fn with the batch's first window.
func textLogits(b backends.Backend, ctx *mlctx.Context, model models.LMConfig, linear adapter.LinearFunc, data textWindows,
	batch int, exec **mlctx.Exec, fn func(first int, logits []float32, labels []int32) error) error {
	if *exec == nil {
		e, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, x *Node) *Node {
			return ConvertDType(models.LM(ctx.In(ModelScope), model, models.Run{Linear: linear}, x), dtypes.Float32)
		})
		if err != nil {
			return err
		}
		*exec = e
	}
	n := data.Len()
	batch = max(1, min(batch, n))
	order := make([]int, 0, batch)
	for start := 0; start < n; start += batch {
		order = order[:0]
		for i := start; i < min(start+batch, n); i++ {
			order = append(order, i)
		}
		x, y := data.batch(order, batch)
		res, err := (*exec).Exec(x)
		if err != nil {
			return fmt.Errorf("evaluating the language model on %s: %w", data.name, err)
		}
		rows := len(order) * data.seqLen
		z := tensors.MustCopyFlatData[float32](res[0])
		labels := tensors.MustCopyFlatData[int32](y)
		if err := fn(start, z[:rows*model.Vocab], labels[:rows]); err != nil {
			return err
		}
	}
	return nil
}

// scoreText evaluates the model on data: bits per character, accuracy and,
// with base logits (positions × V, the whole of data), the mean KL from
// them. keep, when set, also returns every logit.
func scoreText(b backends.Backend, ctx *mlctx.Context, model models.LMConfig, linear adapter.LinearFunc, data textWindows,
	batch int, exec **mlctx.Exec, base []float32, keep bool) (TextScore, []float32, error) {
	v := model.Vocab
	if base != nil && len(base) != data.Tokens()*v {
		return TextScore{}, nil, fmt.Errorf("%s: %d base logits for %d positions of %d tokens", data.name, len(base), data.Tokens(), v)
	}
	var kept []float32
	if keep {
		kept = make([]float32, 0, data.Tokens()*v)
	}
	var bits, correct, kl float64
	targets := make([]int, 0, batch*data.seqLen)
	err := textLogits(b, ctx, model, linear, data, batch, exec, func(first int, z []float32, labels []int32) error {
		targets = targets[:0]
		for _, y := range labels {
			targets = append(targets, int(y))
		}
		rows := float64(len(targets))
		bpc, err := analysis.BitsPerCharacter(z, v, targets)
		if err != nil {
			return fmt.Errorf("%s: %w", data.name, err)
		}
		acc, err := analysis.Accuracy(z, v, targets)
		if err != nil {
			return fmt.Errorf("%s: %w", data.name, err)
		}
		bits += bpc * rows
		correct += acc * rows
		if base != nil {
			off := first * data.seqLen * v
			k, err := analysis.MeanKL(base[off:off+len(z)], z, v)
			if err != nil {
				return fmt.Errorf("%s: %w", data.name, err)
			}
			kl += k * rows
		}
		if keep {
			kept = append(kept, z...)
		}
		return nil
	})
	if err != nil {
		return TextScore{}, nil, err
	}
	n := float64(data.Tokens())
	return TextScore{BPC: bits / n, Accuracy: 100 * correct / n, KL: kl / n}, kept, nil
}

// score evaluates one of the loop's evaluations.
func (l *lmLoop) score(e textEvalSpec) (TextScore, error) {
	s, _, err := scoreText(l.backend, l.ctx, l.model, l.linear, e.data, l.evalBatch, &l.evaluator, e.base, false)
	return s, err
}

// run trains from scratch or from the checkpoint and returns the curves and
// the training wall time (all sessions).
func (l *lmLoop) run(goctx context.Context) ([]TextEvalPoint, time.Duration, error) {
	steps, err := newStepper(l.phase, l.hyper, l.train.Len(), "training windows", l.trainStep)
	if err != nil {
		return nil, 0, err
	}
	spe, total := steps.stepsPerEpoch, steps.total
	evalEvery := l.evalEvery
	if evalEvery <= 0 {
		evalEvery = spe
	}
	st := lmState{Fingerprint: l.fingerprint}
	if l.checkpoint != "" {
		resumed, err := l.resume()
		if err != nil {
			return nil, 0, err
		}
		if resumed != nil {
			st = *resumed
		}
	}
	start := time.Now()
	seconds := func() float64 { return st.Seconds + time.Since(start).Seconds() }
	save := func() error {
		if l.checkpoint == "" {
			return nil
		}
		saved := st
		saved.Seconds = seconds()
		return writeCheckpoint(l.checkpoint, l.phase, l.ctx, saved)
	}
	tokensPerStep := float64(l.hyper.BatchSize * l.train.seqLen)
	sessionStart, sessionSteps := time.Now(), 0
	lr := 0.0
	for st.Step < total {
		if err := goctx.Err(); err != nil {
			return nil, 0, errors.Join(err, save())
		}
		epoch := st.Step / spe
		x, y := l.train.batch(steps.batchOrder(st.Step), l.hyper.BatchSize)
		loss, correct, stepLR, err := steps.take(st.Step, x, y)
		if err != nil {
			return nil, 0, err
		}
		lr = stepLR
		st.SumLoss += loss
		st.SumCorrect += correct
		st.SumSteps++
		st.Step++
		sessionSteps++
		if l.report != nil {
			perStep := time.Since(sessionStart) / time.Duration(sessionSteps)
			l.report.step(Progress{
				Phase: l.phase, Epoch: min(epoch+1, l.hyper.Epochs), Epochs: l.hyper.Epochs, Step: st.Step, Steps: total,
				Loss: st.SumLoss / float64(st.SumSteps), Accuracy: 100 * st.SumCorrect / (float64(st.SumSteps) * tokensPerStep),
				Elapsed: time.Duration(seconds() * float64(time.Second)), ETA: perStep * time.Duration(total-st.Step),
			})
		}
		point := st.Step%evalEvery == 0 || st.Step == total
		if point {
			p := TextEvalPoint{
				Step: st.Step, Epoch: float64(st.Step) / float64(spe),
				TrainLoss: st.SumLoss / float64(st.SumSteps), TrainAccuracy: 100 * st.SumCorrect / (float64(st.SumSteps) * tokensPerStep),
				Eval: map[string]float64{}, LearningRate: lr,
			}
			l.last = map[string]TextScore{}
			for _, e := range l.evals {
				s, err := l.score(e)
				if err != nil {
					return nil, 0, err
				}
				p.Eval[e.key] = s.BPC
				if e.base != nil && e.klKey != "" {
					p.Eval[e.klKey] = s.KL
				}
				l.last[e.key] = s
			}
			p.Seconds = seconds()
			st.Curves = append(st.Curves, p)
			st.SumLoss, st.SumCorrect, st.SumSteps = 0, 0, 0
			if l.report != nil {
				l.report.textPoint(l.phase, p)
			}
		}
		if point || (l.every > 0 && st.Step%l.every == 0) {
			if err := save(); err != nil {
				return nil, 0, err
			}
		}
		if l.afterStep != nil {
			l.afterStep(st.Step)
		}
	}
	if l.report != nil {
		l.report.done()
	}
	return st.Curves, time.Duration(seconds() * float64(time.Second)), nil
}

// resume loads the checkpoint when there is one; nil means none.
func (l *lmLoop) resume() (*lmState, error) {
	return readCheckpoint(l.checkpoint, l.phase, l.fingerprint, l.ctx, func(st *lmState) string { return st.Fingerprint })
}

// textPoint reports a curve point: a log line (the Log callback or the
// terminal) with the training loss in bits per token and the evaluations.
func (r *reporter) textPoint(phase string, p TextEvalPoint) {
	keys := make([]string, 0, len(p.Eval))
	for k := range p.Eval {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.4f", k, p.Eval[k])
	}
	r.logf("%s step %d (epoch %.2f): train bpc %.4f acc %.1f%%  %s  (%.0fs)",
		phase, p.Step, p.Epoch, p.TrainLoss/math.Ln2, p.TrainAccuracy, strings.Join(parts, "  "), p.Seconds)
}
