package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/train/adamw"
)

// Hyper are the optimisation settings of one training loop: AdamW
// (β = 0.9, 0.999, ε = 1e-8, decoupled weight decay on every trained
// variable), the cosine schedule with warmup of LearningRate, and clipping of
// the gradients' global L2 norm.
type Hyper struct {
	Epochs       int     `json:"epochs"`
	BatchSize    int     `json:"batch_size"`
	LearningRate float64 `json:"learning_rate"`
	WeightDecay  float64 `json:"weight_decay"`
	// Warmup is the fraction of all steps spent warming up (0–1).
	Warmup float64 `json:"warmup"`
	// Clip bounds the global gradient norm: g ← g·min(1, Clip/(‖g‖+1e-6)); 0 disables it.
	Clip float64 `json:"clip"`
	// Seed drives the data order (and, by the caller, initialisations).
	Seed uint64 `json:"seed"`
}

// Validate checks the ranges of h.
func (h Hyper) Validate() error {
	switch {
	case h.Epochs < 1:
		return fmt.Errorf("epochs %d, want ≥ 1", h.Epochs)
	case h.BatchSize < 1:
		return fmt.Errorf("batch size %d, want ≥ 1", h.BatchSize)
	case !(h.LearningRate > 0) || math.IsInf(h.LearningRate, 0):
		return fmt.Errorf("learning rate %v, want > 0", h.LearningRate)
	case !(h.WeightDecay >= 0) || math.IsInf(h.WeightDecay, 0):
		return fmt.Errorf("weight decay %v, want ≥ 0", h.WeightDecay)
	case !(h.Warmup >= 0 && h.Warmup <= 1):
		return fmt.Errorf("warmup %v, want a fraction of the steps in [0, 1]", h.Warmup)
	case !(h.Clip >= 0) || math.IsInf(h.Clip, 0):
		return fmt.Errorf("clip %v, want ≥ 0 (0 disables clipping)", h.Clip)
	}
	return nil
}

// EpochStats is one point of the per-epoch curves.
type EpochStats struct {
	Epoch int `json:"epoch"` // 1-based
	// TrainLoss and TrainAccuracy (%) are means over the epoch's steps.
	TrainLoss     float64 `json:"train_loss"`
	TrainAccuracy float64 `json:"train_acc"`
	// Eval holds the end-of-epoch evaluations by name (accuracies in %):
	// "test_acc" when pretraining; "b_acc" and "a_acc" when fine-tuning.
	Eval map[string]float64 `json:"eval"`
	// LearningRate is the rate of the epoch's last step.
	LearningRate float64 `json:"learning_rate"`
	// Seconds is the training wall time up to the end of this epoch.
	Seconds float64 `json:"seconds"`
}

// evalSpec is an evaluation run after every epoch.
type evalSpec struct {
	key     string // name in EpochStats.Eval
	head    string
	classes int
	data    examples
}

// loop is one training run of a network head on a dataset.
type loop struct {
	phase       string
	backend     backends.Backend
	ctx         *mlctx.Context // root; the network lives in ctx.In(ModelScope)
	net         Network
	linear      adapter.LinearFunc
	head        string
	classes     int
	train       examples
	evals       []evalSpec
	hyper       Hyper
	checkpoint  string // state file; "" = none
	every       int    // checkpoint every this many steps (also at each epoch's end); 0 = epochs only
	fingerprint string // identifies the configuration in checkpoints
	report      *reporter
	evalBatch   int
	// afterStep, when set, is called after each step with the steps done
	// (tests use it to stop a run at a given point).
	afterStep func(step int)
	// afterEpoch, when set, is called after each epoch's evaluations with the
	// steps done, the epoch's statistics and the evaluations' logits by key.
	afterEpoch func(step int, stats EpochStats, logits map[string][]float32) error

	evaluators map[string]*mlctx.Exec
	// lastEval holds the logits of the last epoch's evaluations by key
	// (empty when this session trained no epoch).
	lastEval map[string][]float32
	// tracePerEpoch asks for that many points per epoch of the training
	// loss and accuracy (0: none); trace holds them after run (all
	// sessions: the points are part of the checkpoint).
	tracePerEpoch int
	trace         []TracePoint
}

// TracePoint is the training loss and accuracy averaged over the steps since
// the previous point (min(points, steps) points per epoch, as evenly spaced as
// whole steps allow; the last one ends the epoch).
type TracePoint struct {
	Step int `json:"step"` // optimisation steps done
	// Epoch is the fractional epoch at the point: epoch e ends at e.
	Epoch    float64 `json:"epoch"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"` // %
}

// loopState is what a checkpoint stores besides the variables.
type loopState struct {
	Fingerprint  string       `json:"fingerprint"`
	Step         int          `json:"step"`  // optimisation steps done
	Epoch        int          `json:"epoch"` // epochs completed
	EpochLoss    float64      `json:"epoch_loss"`
	EpochCorrect float64      `json:"epoch_correct"`
	EpochSeen    int          `json:"epoch_seen"`
	Curves       []EpochStats `json:"curves"`
	Seconds      float64      `json:"seconds"` // training wall time before this session
	// The trace so far and the sums of its current interval.
	Trace        []TracePoint `json:"trace,omitempty"`
	TraceLoss    float64      `json:"trace_loss,omitempty"`
	TraceCorrect float64      `json:"trace_correct,omitempty"`
	TraceSeen    int          `json:"trace_seen,omitempty"`
}

const stateKey = "prism_train_state"

func (l *loop) stepsPerEpoch() int { return l.train.Len() / l.hyper.BatchSize }

// epochSeed is the data-order seed of an epoch.
func epochSeed(seed uint64, epoch int) uint64 { return seed*0x9e3779b97f4a7c15 + uint64(epoch) + 1 }

// crossEntropy is the batch mean of −log softmax(logits)[label]:
// logits [B, K], labels [B] int32 → scalar.
func crossEntropy(logits, labels *Node) *Node {
	k := logits.Shape().Dimensions[1]
	logp := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logp, OneHot(labels, k, logits.DType())), 1)
	return Neg(ReduceAllMean(picked))
}

// correctCount is the number of rows whose arg-max equals the label.
func correctCount(logits, labels *Node) *Node {
	pred := ArgMax(logits, 1, dtypes.Int32)
	return ReduceAllSum(ConvertDType(Equal(pred, labels), dtypes.Float32))
}

// newOptimizer is the loops' AdamW (β = 0.9, 0.999, ε = 1e-8), with h's
// weight decay and clipping.
func newOptimizer(b backends.Backend, h Hyper) *adamw.Optimizer {
	return adamw.New(b, adamw.Config{LearningRate: h.LearningRate, WeightDecay: h.WeightDecay, Epsilon: 1e-8, Clip: h.Clip})
}

// stepLearningRate is the learning rate a step is given: the schedule's,
// rounded to float32 as the step graph receives it.
func stepLearningRate(lr float64) (float64, *tensors.Tensor) {
	return float64(float32(lr)), tensors.FromScalar(float32(lr))
}

// trainStep builds the executor of one optimisation step:
// (x, labels, lr) → (loss, correct, the optimizer's outputs…); opt.Apply
// finishes the step with the outputs after the first two.
func (l *loop) trainStep() (*mlctx.Exec, *adamw.Optimizer, error) {
	opt := newOptimizer(l.backend, l.hyper)
	exec, err := mlctx.NewExec(l.backend, l.ctx, func(ctx *mlctx.Context, x, labels, lr *Node) []*Node {
		mctx := ctx.In(ModelScope)
		logits := l.net.logits(mctx, l.linear, x, l.head, l.classes)
		loss := crossEntropy(logits, labels)
		correct := correctCount(logits, labels)
		return append([]*Node{ConvertDType(loss, dtypes.Float64), ConvertDType(correct, dtypes.Float64)},
			opt.UpdateGraph(ctx, loss, lr)...)
	})
	return exec, opt, err
}

// logits evaluates head on every example of data: N×classes, row-major.
func (l *loop) logits(head string, classes int, data examples) ([]float32, error) {
	return evalLogits(l.backend, l.ctx, l.net, l.linear, head, classes, data, l.evalBatch, l.evaluators)
}

// evalLogits runs the network's head on every example of data in padded
// batches of size batch (one compiled shape), caching executors by head.
func evalLogits(b backends.Backend, ctx *mlctx.Context, net Network, linear adapter.LinearFunc, head string, classes int,
	data examples, batch int, cache map[string]*mlctx.Exec) ([]float32, error) {
	exec := cache[head]
	if exec == nil {
		var err error
		exec, err = mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, x *Node) *Node {
			return ConvertDType(net.logits(ctx.In(ModelScope), linear, x, head, classes), dtypes.Float32)
		})
		if err != nil {
			return nil, err
		}
		if cache != nil {
			cache[head] = exec
		}
	}
	n := data.Len()
	batch = max(1, min(batch, n))
	out := make([]float32, 0, n*classes)
	order := make([]int, 0, batch)
	for start := 0; start < n; start += batch {
		order = order[:0]
		for i := start; i < min(start+batch, n); i++ {
			order = append(order, i)
		}
		x, _ := data.batch(order, batch)
		res, err := exec.Exec(x)
		if err != nil {
			return nil, fmt.Errorf("evaluating %s on %s: %w", head, data.name, err)
		}
		vals := tensors.MustCopyFlatData[float32](res[0])
		out = append(out, vals[:len(order)*classes]...)
	}
	return out, nil
}

// accuracy is the percentage of rows of logits (N×classes) whose arg-max is the label.
func accuracy(logits []float32, classes int, data examples) float64 {
	n := data.Len()
	if n == 0 {
		return math.NaN()
	}
	correct := 0
	for i := 0; i < n; i++ {
		row := logits[i*classes : (i+1)*classes]
		best := 0
		for c := 1; c < classes; c++ {
			if row[c] > row[best] {
				best = c
			}
		}
		if int32(best) == data.label(i) {
			correct++
		}
	}
	return 100 * float64(correct) / float64(n)
}

// run trains from scratch or from the checkpoint, returning the curves and
// the training wall time (all sessions).
func (l *loop) run(goctx context.Context) ([]EpochStats, time.Duration, error) {
	steps, err := newStepper(l.phase, l.hyper, l.train.Len(), "training examples", l.trainStep)
	if err != nil {
		return nil, 0, err
	}
	if l.evaluators == nil {
		l.evaluators = map[string]*mlctx.Exec{}
	}
	spe, total := steps.stepsPerEpoch, steps.total
	// Restore a checkpoint before the step graph is built: the optimizer
	// then finds its state variables already set.
	st := loopState{Fingerprint: l.fingerprint}
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
	sessionStart, sessionSteps := time.Now(), 0
	lr := 0.0
	for st.Epoch < l.hyper.Epochs {
		for i := st.Step - st.Epoch*spe; i < spe; i++ {
			if err := goctx.Err(); err != nil {
				return nil, 0, errors.Join(err, save())
			}
			x, y := l.train.batch(steps.batchOrder(st.Step), l.hyper.BatchSize)
			loss, correct, stepLR, err := steps.take(st.Step, x, y)
			if err != nil {
				return nil, 0, err
			}
			lr = stepLR
			st.EpochLoss += loss
			st.EpochCorrect += correct
			st.EpochSeen += l.hyper.BatchSize
			st.Step++
			sessionSteps++
			if p := l.tracePerEpoch; p > 0 {
				st.TraceLoss += loss
				st.TraceCorrect += correct
				st.TraceSeen += l.hyper.BatchSize
				// Points after steps ⌈j·spe/p⌉, j = 1…p: p intervals of
				// ⌊spe/p⌋ or ⌈spe/p⌉ steps (every step when spe < p).
				if (i+1)*p/spe > i*p/spe {
					st.Trace = append(st.Trace, TracePoint{
						Step: st.Step, Epoch: float64(st.Epoch) + float64(i+1)/float64(spe),
						Loss:     st.TraceLoss / float64(st.TraceSeen/l.hyper.BatchSize),
						Accuracy: 100 * st.TraceCorrect / float64(st.TraceSeen),
					})
					st.TraceLoss, st.TraceCorrect, st.TraceSeen = 0, 0, 0
				}
			}
			if l.report != nil {
				steps := float64(st.EpochSeen / l.hyper.BatchSize)
				perStep := time.Since(sessionStart) / time.Duration(sessionSteps)
				l.report.step(Progress{
					Phase: l.phase, Epoch: st.Epoch + 1, Epochs: l.hyper.Epochs, Step: st.Step, Steps: total,
					Loss: st.EpochLoss / steps, Accuracy: 100 * st.EpochCorrect / float64(st.EpochSeen),
					Elapsed: time.Duration(seconds() * float64(time.Second)), ETA: perStep * time.Duration(total-st.Step),
				})
			}
			if l.every > 0 && st.Step%l.every == 0 && i+1 < spe {
				if err := save(); err != nil {
					return nil, 0, err
				}
			}
			if l.afterStep != nil {
				l.afterStep(st.Step)
			}
		}
		stats := EpochStats{
			Epoch:     st.Epoch + 1,
			TrainLoss: st.EpochLoss / float64(spe), TrainAccuracy: 100 * st.EpochCorrect / float64(st.EpochSeen),
			Eval: map[string]float64{}, LearningRate: lr,
		}
		logits := map[string][]float32{}
		for _, e := range l.evals {
			z, err := l.logits(e.head, e.classes, e.data)
			if err != nil {
				return nil, 0, err
			}
			stats.Eval[e.key] = accuracy(z, e.classes, e.data)
			logits[e.key] = z
		}
		stats.Seconds = seconds()
		l.lastEval = logits
		if l.afterEpoch != nil {
			if err := l.afterEpoch(st.Step, stats, logits); err != nil {
				return nil, 0, err
			}
		}
		st.Curves = append(st.Curves, stats)
		st.Epoch++
		st.EpochLoss, st.EpochCorrect, st.EpochSeen = 0, 0, 0
		if l.report != nil {
			l.report.epoch(l.phase, stats)
		}
		if err := save(); err != nil {
			return nil, 0, err
		}
	}
	if l.report != nil {
		l.report.done()
	}
	l.trace = st.Trace
	return st.Curves, time.Duration(seconds() * float64(time.Second)), nil
}

// resume loads the checkpoint when there is one; nil means none.
func (l *loop) resume() (*loopState, error) {
	return readCheckpoint(l.checkpoint, l.phase, l.fingerprint, l.ctx, func(st *loopState) string { return st.Fingerprint })
}
