package analysis

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestEqualBands(t *testing.T) {
	for _, tc := range []struct {
		k, count int
		want     []Band
	}{
		{10, 3, []Band{{0, 4}, {4, 7}, {7, 10}}},
		{4, 10, []Band{{0, 1}, {1, 2}, {2, 3}, {3, 4}}},
		{768, 10, nil},
		{0, 10, nil},
	} {
		got := EqualBands(tc.k, tc.count)
		if tc.want != nil && len(got) != len(tc.want) {
			t.Errorf("EqualBands(%d, %d) = %v, want %v", tc.k, tc.count, got, tc.want)
			continue
		}
		lo := 0
		for i, b := range got {
			if b.Lo != lo || b.Len() < tc.k/min(tc.count, tc.k) || b.Len() > tc.k/min(tc.count, tc.k)+1 {
				t.Errorf("EqualBands(%d, %d) band %d = %v", tc.k, tc.count, i, b)
			}
			if tc.want != nil && b != tc.want[i] {
				t.Errorf("EqualBands(%d, %d) band %d = %v, want %v", tc.k, tc.count, i, b, tc.want[i])
			}
			lo = b.Hi
		}
		if tc.k > 0 && lo != tc.k {
			t.Errorf("EqualBands(%d, %d) covers [0, %d)", tc.k, tc.count, lo)
		}
	}
	if s := (Band{3, 4}).String() + " " + (Band{0, 77}).String(); s != "3 0–76" {
		t.Errorf("band strings %q", s)
	}
	w := Window{Start: 5, Rank: 3}
	if w.Overlap(0, 6) != 1 || w.Overlap(6, 20) != 2 || w.Overlap(8, 9) != 0 || w.String() != "[5, 8)" || (Window{}).Overlap(0, 9) != 0 {
		t.Errorf("window overlaps wrong")
	}
}

// On a random matrix the per-index energies, band summaries, window blocks
// and heat bins all add up to the same ‖D‖_F².
func TestSplitChangeEnergiesAddUp(t *testing.T) {
	rng := newRand(31)
	k := 23
	d := randDense(rng, k, k)
	w := Window{Start: 7, Rank: 5}
	s, err := SplitChange(d, SplitOptions{Window: w, Bands: EqualBands(k, 4), HeatBins: 6})
	if err != nil {
		t.Fatal(err)
	}
	total := mat.Norm(d, 2) * mat.Norm(d, 2)
	var diag, off float64
	for i := 0; i < k; i++ {
		diag += d.At(i, i) * d.At(i, i)
		for j := 0; j < k; j++ {
			if i != j {
				off += d.At(i, j) * d.At(i, j)
			}
		}
	}
	checks := map[string][2]float64{
		"diag":          {s.DiagNorm * s.DiagNorm, diag},
		"off":           {s.OffNorm * s.OffNorm, off},
		"norm":          {s.Norm() * s.Norm(), total},
		"window blocks": {s.WindowEnergy.Total(), total},
		"fraction":      {s.OffFraction(), off / total},
	}
	var rows, cols, share float64
	for i := 0; i < k; i++ {
		rows += s.OffRowEnergy[i]
		cols += s.OffColEnergy[i]
	}
	for _, b := range s.Bands {
		share += b.EnergyShare
	}
	checks["row energies"] = [2]float64{rows, off}
	checks["column energies"] = [2]float64{cols, off}
	checks["band shares"] = [2]float64{share, 1}
	var heat float64
	for a, ba := range s.HeatBands {
		for b, bb := range s.HeatBands {
			v := s.HeatRMS.At(a, b)
			heat += v * v * float64(ba.Len()*bb.Len())
		}
	}
	checks["heat"] = [2]float64{heat, total}
	for name, c := range checks {
		if !near(c[0], c[1], 1e-12*math.Max(1, c[1])) {
			t.Errorf("%s: %g, want %g", name, c[0], c[1])
		}
	}
	// Window blocks by brute force.
	var inIn, inOut float64
	for i := w.Start; i < w.End(); i++ {
		for j := 0; j < k; j++ {
			if i != j && w.Contains(j) {
				inIn += d.At(i, j) * d.At(i, j)
			} else if i != j {
				inOut += d.At(i, j) * d.At(i, j)
			}
		}
	}
	if !near(s.WindowEnergy.OffInIn, inIn, 1e-12) || !near(s.WindowEnergy.OffInOut, inOut, 1e-12) {
		t.Errorf("window blocks %+v, want in-in %g in-out %g", s.WindowEnergy, inIn, inOut)
	}
	if s.Bands[1].InWindow != 5 || s.Bands[0].InWindow != 0 { // bands [0,6) [6,12) ...
		t.Errorf("band window overlaps %d %d", s.Bands[0].InWindow, s.Bands[1].InWindow)
	}
	if len(s.HeatBands) != 6 || s.Delta != nil {
		t.Errorf("heat bins %d, delta kept %v", len(s.HeatBands), s.Delta != nil)
	}
}

func TestMeanProfileAndBands(t *testing.T) {
	a, _ := SplitChange(mat.NewDense(2, 2, []float64{3, 1, 0, 0}), SplitOptions{Bands: EqualBands(2, 2)})
	b, _ := SplitChange(mat.NewDense(2, 2, []float64{4, 0, 0, 2}), SplitOptions{Bands: EqualBands(2, 2)})
	p, err := MeanProfile([]Split{a, b})
	if err != nil {
		t.Fatal(err)
	}
	// RMS of |3| and |4| is sqrt(12.5); of 0 and 2 is sqrt(2); row energy 1 and 0 → sqrt(0.5).
	if !near(p.Diag[0], math.Sqrt(12.5), 1e-15) || !near(p.Diag[1], math.Sqrt(2), 1e-15) ||
		!near(p.OffRow[0], math.Sqrt(0.5), 1e-15) || p.OffRow[1] != 0 || !near(p.OffCol[1], math.Sqrt(0.5), 1e-15) {
		t.Errorf("mean profile %+v", p)
	}
	mb, err := MeanBands([]Split{a, b})
	if err != nil {
		t.Fatal(err)
	}
	// Band 0 shares: a: (9+1)/10 = 1, b: 16/20 = 0.8.
	if len(mb) != 2 || !near(mb[0].EnergyShare, 0.9, 1e-15) || mb[1].Lo != 0.5 || mb[1].Hi != 1 || !near(mb[0].MeanDiag, 3.5, 1e-15) {
		t.Errorf("mean bands %+v", mb)
	}
	c, _ := SplitChange(mat.NewDense(3, 3, nil), SplitOptions{})
	if _, err := MeanProfile([]Split{a, c}); err == nil {
		t.Error("profiles of different K averaged")
	}
	if !math.IsNaN(c.OffDiagRatio()) || !math.IsNaN(c.OffFraction()) || !math.IsNaN(c.DiagCentroid) {
		t.Error("zero change should give NaN ratios")
	}
}
