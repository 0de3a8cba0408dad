package lowrank_test

import (
	"fmt"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/lowrank/lowranktest"
)

// Where each window preset starts for a 768×3072 layer (k = 768) at rank 16.
func ExampleWindowSpec_Resolve() {
	for _, text := range []string{"pissa", "mid", "milora", "start=100", "fraction=0.25"} {
		spec, err := lowrank.ParseWindowSpec(text)
		if err != nil {
			panic(err)
		}
		s, err := spec.Resolve("blocks.0.mlp.fc2", 768, 3072, 16)
		fmt.Printf("%-14s s=%d %v\n", text, s, err)
	}
	_, err := lowrank.WindowSpec{Preset: "start", Start: 760}.Resolve("blocks.0.mlp.fc2", 768, 3072, 16)
	fmt.Println(err)
	// Output:
	// pissa          s=0 <nil>
	// mid            s=376 <nil>
	// milora         s=752 <nil>
	// start=100      s=100 <nil>
	// fraction=0.25  s=188 <nil>
	// lowrank: layer "blocks.0.mlp.fc2" (768×3072, k=768): invalid window start=760 with s=760 r=16: s+r=776 exceeds k=768
}

// A mid-window adapter on a 6×4 matrix with singular values 8, 4, 2, 1:
// W = Base + scale·B·A holds, the adapter carries σ₁ and σ₂, and the columns
// of B have squared norms σ/scale.
func ExampleInit() {
	w, err := lowranktest.WithSpectrum[float64](6, 4, []float64{8, 4, 2, 1}, 42)
	if err != nil {
		panic(err)
	}
	a, err := lowrank.Init("fc", w, lowrank.Config{Method: lowrank.MethodMid, Rank: 2, Alpha: 4})
	if err != nil {
		panic(err)
	}
	fmt.Printf("start %d, scale %g, singular %.3g\n", a.Start, a.Scale, a.Singular)
	fmt.Printf("A %d×%d, B %d×%d, Base %d×%d\n", a.A.Rows, a.A.Cols, a.B.Rows, a.B.Cols, a.Base.Rows, a.Base.Cols)
	var worst, normB0 float64
	for i := 0; i < 6; i++ {
		for j := 0; j < 4; j++ {
			ba := a.B.At(i, 0)*a.A.At(0, j) + a.B.At(i, 1)*a.A.At(1, j)
			worst = max(worst, abs(w.At(i, j)-(a.Base.At(i, j)+a.Scale*ba)))
		}
		normB0 += a.B.At(i, 0) * a.B.At(i, 0)
	}
	fmt.Printf("max |W − (Base + scale·B·A)| < 1e-14: %v\n", worst < 1e-14)
	fmt.Printf("‖B[:,0]‖² = %.4f = σ₁/scale\n", normB0)
	// Output:
	// start 1, scale 2, singular [4 2]
	// A 2×4, B 6×2, Base 6×4
	// max |W − (Base + scale·B·A)| < 1e-14: true
	// ‖B[:,0]‖² = 2.0000 = σ₁/scale
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
