package analysis

import (
	"fmt"
	"math"

	"github.com/prism-lora/prism/core/lowrank"
)

// Float is the element type of logits: float32 or float64 (lowrank.Float).
// Sums are always accumulated in float64.
type Float = lowrank.Float

// LogSoftmax writes log p_c = z_c − log Σ_d exp z_d for one row of logits into
// dst (grown as needed) and returns it. It subtracts the row maximum first, so
// it neither overflows nor underflows for any finite logits.
func LogSoftmax[T Float](dst []float64, logits []T) []float64 {
	if cap(dst) < len(logits) {
		dst = make([]float64, len(logits))
	}
	dst = dst[:len(logits)]
	if len(logits) == 0 {
		return dst
	}
	top := math.Inf(-1)
	for _, z := range logits {
		top = math.Max(top, float64(z))
	}
	var sum float64
	for _, z := range logits {
		sum += math.Exp(float64(z) - top)
	}
	logSum := top + math.Log(sum)
	for c, z := range logits {
		dst[c] = float64(z) - logSum
	}
	return dst
}

// rowsOf checks that flat row-major logits hold whole rows of classes values.
func rowsOf(name string, n, classes int) (int, error) {
	if classes <= 0 {
		return 0, fmt.Errorf("%s: %d classes, want at least 1", name, classes)
	}
	if n%classes != 0 {
		return 0, fmt.Errorf("%s: %d values is not a whole number of rows of %d classes", name, n, classes)
	}
	return n / classes, nil
}

// Accuracy returns the fraction of rows of logits (N×classes, row-major) whose
// arg-max (first on ties) equals the label.
func Accuracy[T Float](logits []T, classes int, labels []int) (float64, error) {
	rows, err := rowsOf("logits", len(logits), classes)
	if err != nil {
		return 0, err
	}
	if rows != len(labels) {
		return 0, fmt.Errorf("logits have %d rows but there are %d labels", rows, len(labels))
	}
	if rows == 0 {
		return 0, fmt.Errorf("accuracy of no examples")
	}
	correct := 0
	for i, label := range labels {
		if label < 0 || label >= classes {
			return 0, fmt.Errorf("label %d of example %d is outside [0, %d)", label, i, classes)
		}
		row := logits[i*classes : (i+1)*classes]
		best := 0
		for c, z := range row {
			if z > row[best] {
				best = c
			}
		}
		if best == label {
			correct++
		}
	}
	return float64(correct) / float64(rows), nil
}

// AccuracyDrop returns the forgetting in points: 100·(before − after) for
// accuracies given as fractions in [0, 1]. Positive means the model forgot.
func AccuracyDrop(before, after float64) float64 { return 100 * (before - after) }

// MeanKL returns the mean over examples of KL(p_base ‖ p_after) in nats,
//
//	KL = Σ_c p_base,c · (log p_base,c − log p_after,c),
//
// with both distributions the softmax of per-example logits (N×classes,
// row-major). Classes with p_base,c = 0 contribute nothing.
func MeanKL[T Float](base, after []T, classes int) (float64, error) {
	rows, err := rowsOf("base logits", len(base), classes)
	if err != nil {
		return 0, err
	}
	if len(after) != len(base) {
		return 0, fmt.Errorf("after logits have %d values, want %d like the base logits", len(after), len(base))
	}
	if rows == 0 {
		return 0, fmt.Errorf("KL divergence of no examples")
	}
	var lp, lq []float64
	var total float64
	for i := 0; i < rows; i++ {
		lp = LogSoftmax(lp, base[i*classes:(i+1)*classes])
		lq = LogSoftmax(lq, after[i*classes:(i+1)*classes])
		var kl float64
		for c, a := range lp {
			p := math.Exp(a)
			if p == 0 {
				continue
			}
			kl += p * (a - lq[c])
		}
		total += math.Max(kl, 0) // ≥ 0 in exact arithmetic
	}
	return total / float64(rows), nil
}

// CrossEntropy returns the mean of −log p(target) in nats over rows of logits
// (N×vocab, row-major), one target per row.
func CrossEntropy[T Float](logits []T, vocab int, targets []int) (float64, error) {
	rows, err := rowsOf("logits", len(logits), vocab)
	if err != nil {
		return 0, err
	}
	if rows != len(targets) {
		return 0, fmt.Errorf("logits have %d rows but there are %d targets", rows, len(targets))
	}
	if rows == 0 {
		return 0, fmt.Errorf("cross-entropy of no targets")
	}
	var lp []float64
	var total float64
	for i, t := range targets {
		if t < 0 || t >= vocab {
			return 0, fmt.Errorf("target %d at position %d is outside [0, %d)", t, i, vocab)
		}
		lp = LogSoftmax(lp, logits[i*vocab:(i+1)*vocab])
		total -= lp[t]
	}
	return total / float64(rows), nil
}

// BitsPerCharacter returns the mean of −log₂ p(target) over character
// positions (CrossEntropy / ln 2) for a character-level language model.
// The forgetting of a language model is its rise on the held-out
// pretraining text: BitsPerCharacter(after) − BitsPerCharacter(before).
func BitsPerCharacter[T Float](logits []T, vocab int, targets []int) (float64, error) {
	ce, err := CrossEntropy(logits, vocab, targets)
	return ce / math.Ln2, err
}

// TrajectoryPoint is the forgetting measured at one checkpoint.
type TrajectoryPoint struct {
	Step int
	// Accuracy on the old task (fraction), AccuracyDrop in points from the
	// base model's, MeanKL in nats from the base model's predictions.
	Accuracy, AccuracyDrop, MeanKL float64
}

// ForgettingTrajectory evaluates the forgetting at each checkpoint: logits[k]
// are the old-task logits (N×classes) after steps[k], base the pretrained
// model's logits on the same inputs, labels the old task's labels.
func ForgettingTrajectory[T Float](base []T, labels []int, classes int, steps []int, logits [][]T) ([]TrajectoryPoint, error) {
	if len(steps) != len(logits) {
		return nil, fmt.Errorf("%d steps but %d checkpoints of logits", len(steps), len(logits))
	}
	before, err := Accuracy(base, classes, labels)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	points := make([]TrajectoryPoint, len(steps))
	for k, z := range logits {
		acc, err := Accuracy(z, classes, labels)
		if err != nil {
			return nil, fmt.Errorf("checkpoint at step %d: %w", steps[k], err)
		}
		kl, err := MeanKL(base, z, classes)
		if err != nil {
			return nil, fmt.Errorf("checkpoint at step %d: %w", steps[k], err)
		}
		points[k] = TrajectoryPoint{Step: steps[k], Accuracy: acc, AccuracyDrop: AccuracyDrop(before, acc), MeanKL: kl}
	}
	return points, nil
}
