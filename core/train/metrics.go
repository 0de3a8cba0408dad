package train

import (
	"fmt"
	"math"
)

// logSoftmax writes log softmax(z) of one row into dst, in float64.
func logSoftmax(dst []float64, z []float32) {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	for i, v := range z {
		dst[i] = float64(v) - lse
	}
}

// MeanKL is the mean over rows of KL(p ‖ q) = Σ_c p_c·(log p_c − log q_c) in
// nats, with p = softmax(base) and q = softmax(after): base and after are
// N×classes logits, row-major.
func MeanKL(base, after []float32, classes int) (float64, error) {
	if classes < 1 || len(base) != len(after) || len(base)%classes != 0 || len(base) == 0 {
		return math.NaN(), fmt.Errorf("mean KL: logits of %d and %d values do not form N×%d matrices", len(base), len(after), classes)
	}
	n := len(base) / classes
	lp := make([]float64, classes)
	lq := make([]float64, classes)
	var total float64
	for i := 0; i < n; i++ {
		logSoftmax(lp, base[i*classes:(i+1)*classes])
		logSoftmax(lq, after[i*classes:(i+1)*classes])
		var kl float64
		for c := range lp {
			if p := math.Exp(lp[c]); p > 0 {
				kl += p * (lp[c] - lq[c])
			}
		}
		total += kl
	}
	return total / float64(n), nil
}
