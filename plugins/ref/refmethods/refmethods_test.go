package refmethods_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/core/method/hyperparam"
	"github.com/prism-lora/prism/core/method/verify"
	"github.com/prism-lora/prism/plugins/ref/refmethods"
)

func ExampleEnergyStart() {
	s := []float64{4, 2, 1, 1, 1, 1}                      // energies 16, 4, 1, 1, 1, 1 (total 24)
	fmt.Println(refmethods.EnergyStart(s, 2, 0, false))   // PiSSA's window
	fmt.Println(refmethods.EnergyStart(s, 2, 0.5, false)) // 16 ≥ 12 after one component
	fmt.Println(refmethods.EnergyStart(s, 2, 0.8, false)) // 16+4 = 20 ≥ 19.2 after two
	fmt.Println(refmethods.EnergyStart(s, 2, 0.65, true)) // nuclear: 4+2+1 = 7 ≥ 6.5 after three
	fmt.Println(refmethods.EnergyStart(s, 2, 1, false))   // clamped to k−r: MiLoRA's window
	// Output:
	// 0
	// 1
	// 2
	// 3
	// 4
}

// Energy with threshold 0 is PiSSA and with threshold 1 MiLoRA, exactly
// (same components, same A, B, Base up to rounding of the residual).
func TestEnergyEndsAreThePresets(t *testing.T) {
	ctx := context.Background()
	w := method.Matrix{DType: method.Float64, Rows: 9, Cols: 7}
	for i := range 63 {
		w.F64 = append(w.F64, float64((i*37)%11)-5+0.1*float64(i%7))
	}
	svd, err := builtin.ThinSVD(w)
	if err != nil {
		t.Fatal(err)
	}
	e := refmethods.Energy{}
	for _, c := range []struct {
		threshold float64
		preset    string
	}{{0, "pissa"}, {1, "milora"}} {
		hyper, _ := hyperparam.Parse(e.Metadata().Hyperparameters, []string{fmt.Sprintf("threshold=%g", c.threshold)})
		req := method.Request{Layer: "l", Weight: w, SVD: svd, Rank: 3, Alpha: 6, Scale: 2, Hyper: hyper}
		got, err := e.Init(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify.Result(req, got); err != nil {
			t.Fatal(err)
		}
		p, _ := builtin.New(c.preset)
		req.Hyper, _ = hyperparam.Parse(p.Metadata().Hyperparameters, nil)
		want, err := p.Init(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Components) != fmt.Sprint(want.Components) {
			t.Fatalf("threshold %g: components %v, %s has %v", c.threshold, got.Components, c.preset, want.Components)
		}
		for i := range got.A.F64 {
			if d := got.A.F64[i] - want.A.F64[i]; d > 1e-12 || d < -1e-12 {
				t.Fatalf("threshold %g: A differs from %s at %d by %g", c.threshold, c.preset, i, d)
			}
		}
	}
}
