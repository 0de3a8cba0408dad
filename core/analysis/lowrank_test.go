package analysis

import (
	"math"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
)

// merged returns W₁ = Base + Scale·B·A (accumulated in float64, rounded to T
// once): the merged weight of an adapter.
func merged[T lowrank.Float](a lowrank.Adapter[T]) lowrank.Matrix[T] {
	m, n, r := a.Base.Rows, a.Base.Cols, a.Rank
	w := lowrank.NewMatrix[T](m, n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for t := 0; t < r; t++ {
				s += float64(a.B.Data[i*r+t]) * float64(a.A.Data[t*n+j])
			}
			w.Data[i*n+j] = T(float64(a.Base.Data[i*n+j]) + a.Scale*s)
		}
	}
	return w
}

func randomLowRank[T lowrank.Float](seed uint64, m, n int) lowrank.Matrix[T] {
	rng := newRand(seed)
	w := lowrank.NewMatrix[T](m, n)
	for i := range w.Data {
		w.Data[i] = T(rng.NormFloat64())
	}
	return w
}

// untrainedChange initialises every preset window with lowrank (its SVD
// reused as the basis, as a run stores it), merges the untouched adapter and
// returns the largest ‖ΔW‖_F and ‖ΔM‖_F relative to ‖W‖_F.
func untrainedChange[T lowrank.Float](t *testing.T, w lowrank.Matrix[T]) (dw, dm float64) {
	t.Helper()
	f, err := lowrank.ThinSVD(w)
	if err != nil {
		t.Fatal(err)
	}
	basis, err := BasisOf(f)
	if err != nil {
		t.Fatal(err)
	}
	w0, err := MatrixOf(w)
	if err != nil {
		t.Fatal(err)
	}
	norm := lowrank.FrobeniusNorm(w)
	for _, preset := range []string{lowrank.MethodPiSSA, lowrank.MethodMid, lowrank.MethodMiLoRA} {
		c := lowrank.Config{Method: preset, Rank: 4, Alpha: 8}
		a, err := lowrank.InitFromSVD("layer", w, f, c)
		if err != nil {
			t.Fatal(err)
		}
		w1, err := MatrixOf(merged(a))
		if err != nil {
			t.Fatal(err)
		}
		got, err := WeightSpace(w1, basis, WeightOptions{W0: w0, Split: SplitOptions{Window: Window{a.Start, a.Rank}}})
		if err != nil {
			t.Fatal(err)
		}
		dw = math.Max(dw, got.DeltaWNorm/norm)
		dm = math.Max(dm, got.Norm()/norm)
	}
	return dw, dm
}

// An adapter that was never trained changes nothing: W₁ = Wres + scale·B·A
// rounds back to W₀ to the last bit of the storage precision, in float64 and
// in float32 (analysed in float64).
func TestUntrainedLowRankAdapterGivesZeroChange(t *testing.T) {
	dw, dm := untrainedChange(t, randomLowRank[float64](41, 24, 16))
	t.Logf("float64: ‖ΔW‖/‖W‖ = %.3g, ‖ΔM‖/‖W‖ = %.3g", dw, dm)
	if eps := 0x1p-52; dw > 2*eps || dm > 2*eps {
		t.Errorf("float64: relative change %g, %g; want ≤ 2⁻⁵¹", dw, dm)
	}
	dw, dm = untrainedChange(t, randomLowRank[float32](42, 24, 16))
	t.Logf("float32: ‖ΔW‖/‖W‖ = %.3g, ‖ΔM‖/‖W‖ = %.3g", dw, dm)
	if eps := 0x1p-23; dw > 2*eps || dm > 2*eps {
		t.Errorf("float32: relative change %g, %g; want ≤ 2⁻²²", dw, dm)
	}
}

func TestBasisOfRefusesWindowOnlyFactors(t *testing.T) {
	w := randomLowRank[float64](43, 8, 6)
	f, err := lowrank.WindowSVD(w, 2, 3, lowrank.BackendDefault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BasisOf(f); err == nil {
		t.Error("window-only factors accepted as a basis")
	}
	if _, err := MatrixOf(lowrank.Matrix[float32]{Rows: 2, Cols: 2, Data: make([]float32, 3)}); err == nil {
		t.Error("short buffer accepted")
	}
}
