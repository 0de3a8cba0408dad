package analysis

import (
	"fmt"
	"math"
)

// Profile is a change along the component index, as magnitudes:
// Diag_i = |D_ii|, OffRow_i = sqrt(OffRowEnergy_i), OffCol_i = sqrt(OffColEnergy_i).
type Profile struct {
	Diag, OffRow, OffCol []float64
}

// Profile returns the split's per-index magnitudes.
func (s Split) Profile() Profile {
	p := Profile{
		Diag:   make([]float64, s.K),
		OffRow: make([]float64, s.K),
		OffCol: make([]float64, s.K),
	}
	for i := 0; i < s.K; i++ {
		p.Diag[i] = math.Abs(s.Diag[i])
		p.OffRow[i] = math.Sqrt(s.OffRowEnergy[i])
		p.OffCol[i] = math.Sqrt(s.OffColEnergy[i])
	}
	return p
}

// MeanProfile averages profiles of layers with the same K as root mean
// squares, so energies average: Diag_i = sqrt(mean_l D_ii(l)²), and likewise
// for the off-diagonal row and column energies.
func MeanProfile(splits []Split) (Profile, error) {
	if len(splits) == 0 {
		return Profile{}, fmt.Errorf("mean profile of no layers")
	}
	k := splits[0].K
	p := Profile{Diag: make([]float64, k), OffRow: make([]float64, k), OffCol: make([]float64, k)}
	for l, s := range splits {
		if s.K != k {
			return Profile{}, fmt.Errorf("layer %d has %d components, want %d like layer 0 (average layers of one size, or use MeanBands)", l, s.K, k)
		}
		for i := 0; i < k; i++ {
			p.Diag[i] += s.Diag[i] * s.Diag[i]
			p.OffRow[i] += s.OffRowEnergy[i]
			p.OffCol[i] += s.OffColEnergy[i]
		}
	}
	inv := 1 / float64(len(splits))
	for i := 0; i < k; i++ {
		p.Diag[i] = math.Sqrt(p.Diag[i] * inv)
		p.OffRow[i] = math.Sqrt(p.OffRow[i] * inv)
		p.OffCol[i] = math.Sqrt(p.OffCol[i] * inv)
	}
	return p, nil
}

// MeanBand is one band averaged over layers, matched by position (the b-th
// decile of every layer), so layers of different sizes can be averaged.
type MeanBand struct {
	// Index is the band's position; Lo and Hi its mean relative bounds in
	// [0, 1] (index / K).
	Index  int
	Lo, Hi float64
	// InWindow is the mean fraction of the band's indices inside the window.
	InWindow float64
	// MeanDiag is the mean of the layers' MeanDiag; DiagNorm, OffRowNorm and
	// OffColNorm are root mean squares over layers; EnergyShare is the mean
	// share (layers with no change are skipped).
	MeanDiag, DiagNorm, OffRowNorm, OffColNorm, EnergyShare float64
}

// MeanBands averages the band summaries of several layers position by
// position; every layer must have the same number of bands.
func MeanBands(splits []Split) ([]MeanBand, error) {
	if len(splits) == 0 {
		return nil, fmt.Errorf("mean bands of no layers")
	}
	nb := len(splits[0].Bands)
	out := make([]MeanBand, nb)
	shares := make([]int, nb)
	for l, s := range splits {
		if len(s.Bands) != nb {
			return nil, fmt.Errorf("layer %d has %d bands, want %d like layer 0", l, len(s.Bands), nb)
		}
		k := float64(s.K)
		for b, band := range s.Bands {
			o := &out[b]
			o.Lo += float64(band.Lo) / k
			o.Hi += float64(band.Hi) / k
			o.InWindow += float64(band.InWindow) / float64(band.Len())
			o.MeanDiag += band.MeanDiag
			o.DiagNorm += band.DiagNorm * band.DiagNorm
			o.OffRowNorm += band.OffRowNorm * band.OffRowNorm
			o.OffColNorm += band.OffColNorm * band.OffColNorm
			if !math.IsNaN(band.EnergyShare) {
				o.EnergyShare += band.EnergyShare
				shares[b]++
			}
		}
	}
	inv := 1 / float64(len(splits))
	for b := range out {
		o := &out[b]
		o.Index = b
		o.Lo *= inv
		o.Hi *= inv
		o.InWindow *= inv
		o.MeanDiag *= inv
		o.DiagNorm = math.Sqrt(o.DiagNorm * inv)
		o.OffRowNorm = math.Sqrt(o.OffRowNorm * inv)
		o.OffColNorm = math.Sqrt(o.OffColNorm * inv)
		if shares[b] > 0 {
			o.EnergyShare /= float64(shares[b])
		} else {
			o.EnergyShare = math.NaN()
		}
	}
	return out, nil
}
