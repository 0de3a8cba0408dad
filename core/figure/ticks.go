package figure

import (
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
)

// NiceTicks places about N major ticks (N ≤ 0 means 5) at multiples of
// 1, 2, 2.5 or 5 × 10^k, labelled with just the decimals the step needs
// ("0", "25", "50" rather than "0.00", "25.00"), and minor ticks between them.
type NiceTicks struct{ N int }

var _ plot.Ticker = NiceTicks{}

// Ticks returns the ticks in [min, max].
func (t NiceTicks) Ticks(min, max float64) []plot.Tick {
	n := t.N
	if n <= 0 {
		n = 5
	}
	if !(max > min) || math.IsInf(min, 0) || math.IsInf(max, 0) {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	// Candidate steps {1, 2, 2.5, 5} × 10^k around range/n; pick the one whose
	// tick count is closest to n+½ (2.5 slightly penalised: its labels need
	// an extra digit), the smaller step on ties.
	raw := (max - min) / float64(n)
	mag0 := math.Floor(math.Log10(raw))
	step, minorDiv, decimals := 0.0, 0.0, 0
	best := math.Inf(1)
	for mag := mag0 - 1; mag <= mag0+1; mag++ {
		base := math.Pow(10, mag)
		for _, m := range []float64{1, 2, 2.5, 5} {
			s := m * base
			count := math.Floor(max/s+1e-9) - math.Ceil(min/s-1e-9) + 1
			score := math.Abs(count - (float64(n) + 0.5))
			if m == 2.5 {
				score += 0.6
			}
			if score < best-1e-12 {
				best, step = score, s
				decimals = int(math.Max(0, -mag))
				minorDiv = 5
				switch m {
				case 2:
					minorDiv = 4
				case 2.5:
					if mag <= 0 {
						decimals++
					} else {
						decimals = 0
					}
					// 2.5 × 10^0 labels need one decimal ("7.5").
					if mag == 0 {
						decimals = 1
					}
				}
			}
		}
	}
	var ticks []plot.Tick
	first := math.Ceil(min/step-1e-9) * step
	for k := 0; ; k++ {
		v := first + float64(k)*step
		if v > max+step*1e-9 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	minor := step / minorDiv
	start := math.Ceil(min/minor-1e-9) * minor
	for k := 0; ; k++ {
		v := start + float64(k)*minor
		if v > max+minor*1e-9 {
			break
		}
		if r := math.Mod(math.Abs(v), step); r < minor*1e-6 || step-r < minor*1e-6 {
			continue
		}
		ticks = append(ticks, plot.Tick{Value: v})
	}
	return ticks
}

// TicksAt labels exactly the given values (e.g. the learning rates of a
// grid), in the shortest form that reads back exactly.
func TicksAt(values ...float64) plot.Ticker {
	vs := append([]float64(nil), values...)
	sort.Float64s(vs)
	ticks := make(plot.ConstantTicks, 0, len(vs))
	for i, v := range vs {
		if i > 0 && v == vs[i-1] {
			continue
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
	}
	return ticks
}
