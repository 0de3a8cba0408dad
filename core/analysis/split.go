package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// DefaultHeatBins is the default number of bins per axis of Split.HeatRMS.
const DefaultHeatBins = 128

// SplitOptions configure SplitChange.
type SplitOptions struct {
	// Bands are the index ranges to summarise; nil means BandCount equal
	// bands (EqualBands).
	Bands []Band
	// BandCount is the number of equal bands used when Bands is nil;
	// 0 means 10 (deciles).
	BandCount int
	// Window marks the fine-tuned components (weight space); zero for none.
	Window Window
	// HeatBins is the number of bins per axis of the binned |D| map;
	// 0 means DefaultHeatBins, and it never exceeds k (one bin per index).
	HeatBins int
	// KeepDelta keeps the full k×k change matrix in Split.Delta.
	KeepDelta bool
}

// Split is the diagonal/off-diagonal decomposition of a square change matrix
// D (k×k: ΔM in weight space, ΔΣ_Y in feature space). Energies are squared
// Frobenius norms, so the per-index energies add up to the totals:
//
//	Σ_i Diag_i² = DiagNorm²,  Σ_i OffRowEnergy_i = Σ_j OffColEnergy_j = OffNorm².
type Split struct {
	K int
	// Diag holds D_ii (signed), length K.
	Diag []float64
	// OffRowEnergy_i = Σ_{j≠i} D_ij²: off-diagonal energy leaving component i's row.
	OffRowEnergy []float64
	// OffColEnergy_j = Σ_{i≠j} D_ij²: off-diagonal energy in component j's column.
	OffColEnergy []float64
	// DiagNorm = ‖diag(D)‖₂, OffNorm = ‖D − diag(D)‖_F.
	DiagNorm, OffNorm float64
	// DiagCentroid and OffCentroid are the energy-weighted mean indices of the
	// diagonal energy D_ii² and of the off-diagonal energy (row and column
	// energy averaged): where the change lands. NaN when there is no energy.
	DiagCentroid, OffCentroid float64
	// Window is the fine-tuned window these indices were marked with.
	Window Window
	// WindowEnergy splits the energy by whether indices are in the window.
	WindowEnergy WindowEnergy
	// Bands summarises the change over bands of indices.
	Bands []BandSummary
	// Heat is |D| binned for heatmaps: HeatRMS(a, b) is the root mean square of
	// D_ij over i ∈ HeatBands[a], j ∈ HeatBands[b].
	HeatBands []Band
	HeatRMS   *mat.Dense
	// Delta is D itself when SplitOptions.KeepDelta was set, else nil.
	Delta *mat.Dense
}

// WindowEnergy is the squared-Frobenius energy of D split by whether the row
// index i and the column index j lie inside (In) or outside (Out) the window.
type WindowEnergy struct {
	DiagIn, DiagOut                        float64 // Σ D_ii², i in / outside the window
	OffInIn, OffInOut, OffOutIn, OffOutOut float64 // Σ D_ij², i≠j, by (row, column) in/out
}

// Total returns the whole energy ‖D‖_F².
func (e WindowEnergy) Total() float64 {
	return e.DiagIn + e.DiagOut + e.OffInIn + e.OffInOut + e.OffOutIn + e.OffOutOut
}

// InsideShare returns the fraction of ‖D‖_F² that stays inside the window's
// own block (DiagIn + OffInIn), NaN when there is no energy.
func (e WindowEnergy) InsideShare() float64 {
	t := e.Total()
	if t == 0 {
		return math.NaN()
	}
	return (e.DiagIn + e.OffInIn) / t
}

// BandSummary summarises one band of indices of a Split.
type BandSummary struct {
	Band
	// InWindow is how many of the band's indices are in the window.
	InWindow int
	// MeanDiag is the mean of D_ii over the band (signed).
	MeanDiag float64
	// DiagNorm = sqrt(Σ_{i∈band} D_ii²).
	DiagNorm float64
	// OffRowNorm = sqrt(Σ_{i∈band} OffRowEnergy_i), OffColNorm likewise by column.
	OffRowNorm, OffColNorm float64
	// EnergyShare is the fraction of ‖D‖_F² in the band's rows
	// (Σ_{i∈band} D_ii² + OffRowEnergy_i) / ‖D‖_F²; NaN when D = 0.
	EnergyShare float64
}

// Norm returns ‖D‖_F.
func (s Split) Norm() float64 { return math.Hypot(s.DiagNorm, s.OffNorm) }

// OffDiagRatio returns ‖off‖/‖diag‖ (+Inf when the diagonal is zero and the
// off-diagonal is not, NaN when both are zero).
func (s Split) OffDiagRatio() float64 {
	if s.DiagNorm == 0 && s.OffNorm == 0 {
		return math.NaN()
	}
	return s.OffNorm / s.DiagNorm
}

// OffFraction returns ‖off‖²/‖D‖_F², the share of the change that mixes
// components (NaN when D = 0).
func (s Split) OffFraction() float64 {
	t := s.DiagNorm*s.DiagNorm + s.OffNorm*s.OffNorm
	if t == 0 {
		return math.NaN()
	}
	return s.OffNorm * s.OffNorm / t
}

// SplitChange decomposes a square change matrix d (k×k) into its diagonal
// and off-diagonal parts, with per-index energies, band summaries, the
// window split and a binned |d| map. d is kept (not copied) when
// o.KeepDelta is set.
func SplitChange(d *mat.Dense, o SplitOptions) (Split, error) {
	k, c := d.Dims()
	if k != c {
		return Split{}, fmt.Errorf("change matrix is %d×%d, want square", k, c)
	}
	bands := o.Bands
	if bands == nil {
		count := o.BandCount
		if count <= 0 {
			count = 10
		}
		bands = EqualBands(k, count)
	}
	if err := checkBands(bands, k); err != nil {
		return Split{}, err
	}
	if err := o.Window.check(k); err != nil {
		return Split{}, err
	}
	s := Split{
		K:            k,
		Diag:         make([]float64, k),
		OffRowEnergy: make([]float64, k),
		OffColEnergy: make([]float64, k),
		Window:       o.Window,
	}
	raw := d.RawMatrix()
	w := o.Window
	var diagE, offE, diagMoment, offMoment float64
	for i := 0; i < k; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		in := w.Contains(i)
		for j, v := range row {
			e := v * v
			if i == j {
				s.Diag[i] = v
				if in {
					s.WindowEnergy.DiagIn += e
				} else {
					s.WindowEnergy.DiagOut += e
				}
				continue
			}
			s.OffRowEnergy[i] += e
			s.OffColEnergy[j] += e
			switch jn := w.Contains(j); {
			case in && jn:
				s.WindowEnergy.OffInIn += e
			case in:
				s.WindowEnergy.OffInOut += e
			case jn:
				s.WindowEnergy.OffOutIn += e
			default:
				s.WindowEnergy.OffOutOut += e
			}
		}
	}
	for i := 0; i < k; i++ {
		de := s.Diag[i] * s.Diag[i]
		oe := 0.5 * (s.OffRowEnergy[i] + s.OffColEnergy[i])
		diagE += de
		offE += s.OffRowEnergy[i]
		diagMoment += float64(i) * de
		offMoment += float64(i) * oe
	}
	s.DiagNorm, s.OffNorm = math.Sqrt(diagE), math.Sqrt(offE)
	s.DiagCentroid, s.OffCentroid = math.NaN(), math.NaN()
	if diagE > 0 {
		s.DiagCentroid = diagMoment / diagE
	}
	if offE > 0 {
		s.OffCentroid = offMoment / offE
	}
	total := diagE + offE
	s.Bands = make([]BandSummary, len(bands))
	for bi, b := range bands {
		var sum, de, re, ce float64
		for i := b.Lo; i < b.Hi; i++ {
			sum += s.Diag[i]
			de += s.Diag[i] * s.Diag[i]
			re += s.OffRowEnergy[i]
			ce += s.OffColEnergy[i]
		}
		share := math.NaN()
		if total > 0 {
			share = (de + re) / total
		}
		s.Bands[bi] = BandSummary{
			Band:        b,
			InWindow:    w.Overlap(b.Lo, b.Hi),
			MeanDiag:    sum / float64(b.Len()),
			DiagNorm:    math.Sqrt(de),
			OffRowNorm:  math.Sqrt(re),
			OffColNorm:  math.Sqrt(ce),
			EnergyShare: share,
		}
	}
	bins := o.HeatBins
	if bins <= 0 {
		bins = DefaultHeatBins
	}
	s.HeatBands, s.HeatRMS = binRMS(d, EqualBands(k, bins))
	if o.KeepDelta {
		s.Delta = d
	}
	return s, nil
}

// binRMS returns the root mean square of d over the blocks bands×bands.
func binRMS(d *mat.Dense, bands []Band) ([]Band, *mat.Dense) {
	nb := len(bands)
	if nb == 0 {
		return nil, nil
	}
	k, _ := d.Dims()
	rowBin := make([]int, k)
	for b, band := range bands {
		for i := band.Lo; i < band.Hi; i++ {
			rowBin[i] = b
		}
	}
	sums := make([]float64, nb*nb)
	raw := d.RawMatrix()
	for i := 0; i < k; i++ {
		bi := rowBin[i]
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		for j, v := range row {
			sums[bi*nb+rowBin[j]] += v * v
		}
	}
	for a, ba := range bands {
		for b, bb := range bands {
			sums[a*nb+b] = math.Sqrt(sums[a*nb+b] / float64(ba.Len()*bb.Len()))
		}
	}
	return bands, mat.NewDense(nb, nb, sums)
}
