package lowranktest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
)

// The suite must fail on broken implementations: each mutation below breaks
// one property and must be reported; the unmodified implementation must not.

type fakeT struct{ errs []string }

type fatalStop struct{}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic(fatalStop{})
}
func (f *fakeT) Fatal(args ...any) {
	f.errs = append(f.errs, fmt.Sprint(args...))
	panic(fatalStop{})
}

// failures runs check against a fake T and returns what it reported.
func failures(check func(t reporter)) []string {
	f := &fakeT{}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(fatalStop); !ok {
					panic(p)
				}
			}
		}()
		check(f)
	}()
	return f.errs
}

func expectFailure(t *testing.T, name, want string, errs []string) {
	t.Helper()
	for _, e := range errs {
		if strings.Contains(e, want) {
			return
		}
	}
	t.Errorf("%s: the suite did not report %q; it reported %q", name, want, errs)
}

func TestCheckSVDCatchesBrokenSVDs(t *testing.T) {
	c := Cases[float64]()[0] // tall 40×17, distinct values
	good := func(w lowrank.Matrix[float64]) (lowrank.Factors[float64], error) { return lowrank.ThinSVD(w) }
	if errs := failures(func(r reporter) { checkSVDCase(r, c, good, 1e-12) }); len(errs) > 0 {
		t.Fatalf("correct SVD reported: %q", errs)
	}
	mutate := func(change func(f *lowrank.Factors[float64])) SVDFunc[float64] {
		return func(w lowrank.Matrix[float64]) (lowrank.Factors[float64], error) {
			f, err := lowrank.ThinSVD(w)
			change(&f)
			return f, err
		}
	}
	swap := mutate(func(f *lowrank.Factors[float64]) {
		f.S[0], f.S[1] = f.S[1], f.S[0]
		for _, m := range []lowrank.Matrix[float64]{f.U, f.V} {
			for i := 0; i < m.Rows; i++ {
				a, b := m.At(i, 0), m.At(i, 1)
				m.Set(i, 0, b)
				m.Set(i, 1, a)
			}
		}
	})
	expectFailure(t, "unsorted values", "not descending", failures(func(r reporter) { checkSVDCase(r, c, swap, 1e-12) }))
	scaled := mutate(func(f *lowrank.Factors[float64]) { f.S[3] *= 1 + 1e-9 })
	errs := failures(func(r reporter) { checkSVDCase(r, c, scaled, 1e-12) })
	expectFailure(t, "perturbed value", "σ_3", errs)
	expectFailure(t, "perturbed value", "‖W − U·S·Vᵀ‖", errs)
	bent := mutate(func(f *lowrank.Factors[float64]) { f.U.Data[0] += 1e-9 })
	expectFailure(t, "non-orthonormal U", "UᵀU", failures(func(r reporter) { checkSVDCase(r, c, bent, 1e-12) }))
	negative := mutate(func(f *lowrank.Factors[float64]) {
		last := len(f.S) - 1
		f.S[last] = -f.S[last]
		for i := 0; i < f.U.Rows; i++ {
			f.U.Set(i, last, -f.U.At(i, last))
		}
	})
	expectFailure(t, "negative value", "negative", failures(func(r reporter) { checkSVDCase(r, c, negative, 1e-12) }))
	transposedU := mutate(func(f *lowrank.Factors[float64]) { f.U.Rows, f.U.Cols = f.U.Cols, f.U.Rows })
	expectFailure(t, "wrong U shape", "factors have", failures(func(r reporter) { checkSVDCase(r, c, transposedU, 1e-12) }))
}

func TestCheckInitCatchesBrokenInits(t *testing.T) {
	c := Cases[float64]()[2] // square 24×24
	cfg := lowrank.Config{Method: lowrank.MethodMid, Rank: 3, Alpha: 6}
	run := func(init InitFunc[float64]) []string {
		return failures(func(r reporter) { checkOneInit(r, init, c, cfg, 1e-12) })
	}
	if errs := run(lowrank.Init[float64]); len(errs) > 0 {
		t.Fatalf("correct init reported: %q", errs)
	}
	mutate := func(change func(a *lowrank.Adapter[float64], w lowrank.Matrix[float64])) InitFunc[float64] {
		return func(layer string, w lowrank.Matrix[float64], c lowrank.Config) (lowrank.Adapter[float64], error) {
			a, err := lowrank.Init(layer, w, c)
			change(&a, w)
			return a, err
		}
	}
	expectFailure(t, "Base = W", "‖W − (Base + scale·B·A)‖",
		run(mutate(func(a *lowrank.Adapter[float64], w lowrank.Matrix[float64]) { a.Base = w.Clone() })))
	// B·2 and A/2 keep the identity but break the √(σ/scale) split.
	expectFailure(t, "unbalanced split", "BᵀB", run(mutate(func(a *lowrank.Adapter[float64], _ lowrank.Matrix[float64]) {
		for i := range a.B.Data {
			a.B.Data[i] *= 2
		}
		for i := range a.A.Data {
			a.A.Data[i] /= 2
		}
	})))
	// The window one component further down, labelled as the mid window.
	shifted := func(layer string, w lowrank.Matrix[float64], c lowrank.Config) (lowrank.Adapter[float64], error) {
		s, err := lowrank.WindowSpec{Preset: lowrank.WindowMid}.Resolve(layer, w.Rows, w.Cols, c.Rank)
		if err != nil {
			return lowrank.Adapter[float64]{}, err
		}
		a, err := lowrank.Init(layer, w, lowrank.Config{Method: lowrank.MethodWindow, Rank: c.Rank, Alpha: c.Alpha,
			Window: lowrank.WindowSpec{Preset: lowrank.WindowStart, Start: s + 1}})
		a.Method, a.Start = c.Method, s
		return a, err
	}
	expectFailure(t, "shifted window", "Singular[0]", run(shifted))
	// A residual that is not orthogonal to the window: Base with the window
	// partly left in (identity broken too, but the orthogonality check must see it).
	expectFailure(t, "residual keeps the window", "Baseᵀ·B", run(mutate(func(a *lowrank.Adapter[float64], w lowrank.Matrix[float64]) {
		for i := 0; i < a.Base.Rows; i++ {
			for j := 0; j < a.Base.Cols; j++ {
				var ba float64
				for k := 0; k < a.Rank; k++ {
					ba += a.B.At(i, k) * a.A.At(k, j)
				}
				a.Base.Set(i, j, a.Base.At(i, j)+0.5*a.Scale*ba)
			}
		}
	})))
}
