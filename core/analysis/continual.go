package analysis

import (
	"fmt"
	"math"
)

// AccuracyMatrix holds continual-learning results: R[i][j] is the accuracy
// (fraction) on task j after training on tasks 0..i in order (T×T). Entries
// above the diagonal (tasks not trained yet) are only used by ForwardTransfer
// and may be NaN otherwise.
type AccuracyMatrix [][]float64

// Tasks returns T.
func (r AccuracyMatrix) Tasks() int { return len(r) }

// Check reports a matrix that is not square or has a NaN on or below the diagonal.
func (r AccuracyMatrix) Check() error {
	t := len(r)
	if t == 0 {
		return fmt.Errorf("accuracy matrix has no tasks")
	}
	for i, row := range r {
		if len(row) != t {
			return fmt.Errorf("accuracy matrix row %d has %d entries, want %d", i, len(row), t)
		}
		for j := 0; j <= i; j++ {
			if math.IsNaN(row[j]) {
				return fmt.Errorf("accuracy matrix entry (%d, %d) is NaN: task %d was trained by stage %d and must be evaluated", i, j, j, i)
			}
		}
	}
	return nil
}

func (r AccuracyMatrix) checkStage(stage int) error {
	if err := r.Check(); err != nil {
		return err
	}
	if stage < 0 || stage >= len(r) {
		return fmt.Errorf("stage %d is outside [0, %d)", stage, len(r))
	}
	return nil
}

// AverageAccuracy returns ACC after stage k: (1/(k+1))·Σ_{j≤k} R[k][j].
func (r AccuracyMatrix) AverageAccuracy(stage int) (float64, error) {
	if err := r.checkStage(stage); err != nil {
		return 0, err
	}
	var s float64
	for j := 0; j <= stage; j++ {
		s += r[stage][j]
	}
	return s / float64(stage+1), nil
}

// BackwardTransfer returns BWT after stage k (Lopez-Paz & Ranzato 2017):
//
//	BWT = (1/k)·Σ_{j<k} (R[k][j] − R[j][j])
//
// negative when learning later tasks hurt earlier ones. Stage 0 has no
// earlier task and gives 0.
func (r AccuracyMatrix) BackwardTransfer(stage int) (float64, error) {
	if err := r.checkStage(stage); err != nil {
		return 0, err
	}
	if stage == 0 {
		return 0, nil
	}
	var s float64
	for j := 0; j < stage; j++ {
		s += r[stage][j] - r[j][j]
	}
	return s / float64(stage), nil
}

// ForwardTransfer returns FWT (Lopez-Paz & Ranzato 2017) over all T tasks:
//
//	FWT = (1/(T−1))·Σ_{j≥1} (R[j−1][j] − b_j)
//
// with b_j the accuracy on task j of the model before any training (e.g. at
// random initialisation). It needs the entries just above the diagonal.
func (r AccuracyMatrix) ForwardTransfer(baseline []float64) (float64, error) {
	if err := r.Check(); err != nil {
		return 0, err
	}
	t := len(r)
	if len(baseline) != t {
		return 0, fmt.Errorf("%d baseline accuracies, want one per task (%d)", len(baseline), t)
	}
	if t < 2 {
		return 0, fmt.Errorf("forward transfer needs at least 2 tasks")
	}
	var s float64
	for j := 1; j < t; j++ {
		if math.IsNaN(r[j-1][j]) {
			return 0, fmt.Errorf("accuracy matrix entry (%d, %d) is NaN: forward transfer needs task %d evaluated before it is trained", j-1, j, j)
		}
		s += r[j-1][j] - baseline[j]
	}
	return s / float64(t-1), nil
}

// Forgetting returns, for each task j < k, how much of its best earlier
// accuracy was lost by stage k (Chaudhry et al. 2018):
//
//	f_j = max_{l∈[j, k)} R[l][j] − R[k][j]
//
// (length k; empty at stage 0).
func (r AccuracyMatrix) Forgetting(stage int) ([]float64, error) {
	if err := r.checkStage(stage); err != nil {
		return nil, err
	}
	f := make([]float64, stage)
	for j := range f {
		best := math.Inf(-1)
		for l := j; l < stage; l++ {
			best = math.Max(best, r[l][j])
		}
		f[j] = best - r[stage][j]
	}
	return f, nil
}

// StageSummary holds the continual-learning metrics after one stage.
type StageSummary struct {
	Stage int
	// AverageAccuracy, BackwardTransfer as fractions; MeanForgetting is the
	// mean of Forgetting(stage) (0 at stage 0).
	AverageAccuracy, BackwardTransfer, MeanForgetting float64
}

// Trajectory returns the metrics after every stage 0..T−1.
func (r AccuracyMatrix) Trajectory() ([]StageSummary, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	out := make([]StageSummary, len(r))
	for k := range r {
		acc, _ := r.AverageAccuracy(k)
		bwt, _ := r.BackwardTransfer(k)
		f, _ := r.Forgetting(k)
		var mf float64
		for _, v := range f {
			mf += v
		}
		if len(f) > 0 {
			mf /= float64(len(f))
		}
		out[k] = StageSummary{Stage: k, AverageAccuracy: acc, BackwardTransfer: bwt, MeanForgetting: mf}
	}
	return out, nil
}
