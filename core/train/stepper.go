package train

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/train/adamw"
	"github.com/prism-lora/prism/datasets/dense"
)

// stepper runs the optimisation steps shared by the vision and the text
// training loops: the data order (a fresh permutation of the examples per
// epoch, seeded by Hyper.Seed), the learning-rate schedule (warmup, then
// cosine), the compiled step (x, y, lr) → (loss, correct, gradients…) and the
// optimizer's update, and the check that the loss stays finite.
type stepper struct {
	phase         string
	hyper         Hyper
	exec          *mlctx.Exec
	opt           *adamw.Optimizer
	examples      int // training examples (images or windows)
	stepsPerEpoch int
	total, warm   int // optimisation steps in all; of them warm-up steps

	perm      []int32 // the permutation of epoch permEpoch
	permEpoch int
	order     []int // scratch: the current batch's example indices
}

// newStepper checks h against the number of training examples (what names
// them in errors) and builds the step with build.
func newStepper(phase string, h Hyper, examples int, what string,
	build func() (*mlctx.Exec, *adamw.Optimizer, error)) (*stepper, error) {
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", phase, err)
	}
	spe := examples / h.BatchSize
	if spe < 1 {
		return nil, fmt.Errorf("%s: %d %s make no batch of %d", phase, examples, what, h.BatchSize)
	}
	exec, opt, err := build()
	if err != nil {
		return nil, err
	}
	total := spe * h.Epochs
	return &stepper{
		phase: phase, hyper: h, exec: exec, opt: opt, examples: examples, stepsPerEpoch: spe,
		total: total, warm: WarmupSteps(h.Warmup, total), permEpoch: -1, order: make([]int, h.BatchSize),
	}, nil
}

// batchOrder returns the example indices of step (0-based): its slice of the
// permutation of its epoch. The slice is reused by the next call.
func (s *stepper) batchOrder(step int) []int {
	epoch, i := step/s.stepsPerEpoch, step%s.stepsPerEpoch
	if epoch != s.permEpoch {
		s.perm, s.permEpoch = dense.Permutation(s.examples, epochSeed(s.hyper.Seed, epoch)), epoch
	}
	for j := range s.order {
		s.order[j] = int(s.perm[i*s.hyper.BatchSize+j])
	}
	return s.order
}

// take runs step (0-based) on the batch (x, y) at the scheduled learning
// rate: the step graph, then the optimizer's update. It returns the batch's
// mean loss, its number of correct predictions and the learning rate.
func (s *stepper) take(step int, x, y *tensors.Tensor) (loss, correct, lr float64, err error) {
	lr = LearningRate(s.hyper.LearningRate, step, s.total, s.warm)
	stepLR, lrT := stepLearningRate(lr)
	out, err := s.exec.Exec(x, y, lrT)
	if err == nil {
		err = s.opt.Apply(out[2:], stepLR)
	}
	if err != nil {
		return 0, 0, lr, fmt.Errorf("%s: step %d: %w", s.phase, step+1, err)
	}
	loss = out[0].Value().(float64)
	if !finite(loss) {
		return 0, 0, lr, fmt.Errorf("%s: step %d: loss is %v (learning rate %.3g too high?)", s.phase, step+1, loss, lr)
	}
	return loss, out[1].Value().(float64), lr, nil
}
