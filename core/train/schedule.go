package train

import "math"

// LearningRate is the cosine schedule with linear warmup used by every loop:
// for step t = 0 … total−1 (the step about to be taken) and w warmup steps,
//
//	lr(t) = base·(t+1)/w                                  t < w
//	lr(t) = base·½·(1 + cos(π·(t−w)/(total−w)))           t ≥ w
//
// so the rate climbs to base over the first w steps and decays to (almost)
// zero by the last one. w ≤ 0 means no warmup; w ≥ total means warmup only.
func LearningRate(base float64, t, total, w int) float64 {
	if t < w {
		return base * float64(t+1) / float64(w)
	}
	if total <= w {
		return base
	}
	return base * 0.5 * (1 + math.Cos(math.Pi*float64(t-w)/float64(total-w)))
}

// WarmupSteps converts a warmup fraction of the total steps into a count
// (rounded, at least 1 when the fraction is positive).
func WarmupSteps(fraction float64, total int) int {
	if fraction <= 0 || total <= 0 {
		return 0
	}
	return max(1, int(math.Round(fraction*float64(total))))
}
