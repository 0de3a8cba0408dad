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

// Converting a trained window adapter to a plain rank-2r LoRA on the original
// weight: W + scale·B2·A2 equals Base + scale·B′·A′.
func ExampleToLoRA() {
	w, err := lowranktest.WithSpectrum[float64](5, 4, []float64{3, 2, 1, 0.5}, 7)
	if err != nil {
		panic(err)
	}
	a, err := lowrank.Init("fc", w, lowrank.Config{Method: lowrank.MethodMiLoRA, Rank: 1, Alpha: 2})
	if err != nil {
		panic(err)
	}
	// "Training" moved A and B.
	trainedA, trainedB := a.A.Clone(), a.B.Clone()
	trainedA.Data[0] += 0.3
	trainedB.Data[2] -= 0.2
	a2, b2, err := lowrank.ToLoRA(a, trainedA, trainedB)
	if err != nil {
		panic(err)
	}
	var worst float64
	for i := 0; i < 5; i++ {
		for j := 0; j < 4; j++ {
			lora := w.At(i, j) + a.Scale*(b2.At(i, 0)*a2.At(0, j)+b2.At(i, 1)*a2.At(1, j))
			window := a.Base.At(i, j) + a.Scale*trainedB.At(i, 0)*trainedA.At(0, j)
			worst = max(worst, abs(lora-window))
		}
	}
	fmt.Printf("A2 %d×%d, B2 %d×%d, alpha for rank 2: %g\n", a2.Rows, a2.Cols, b2.Rows, b2.Cols, a.LoRAAlpha(2))
	fmt.Printf("max |(W + scale·B2·A2) − (Base + scale·B′·A′)| < 1e-14: %v\n", worst < 1e-14)
	// Output:
	// A2 2×4, B2 5×2, alpha for rank 2: 4
	// max |(W + scale·B2·A2) − (Base + scale·B′·A′)| < 1e-14: true
}

// The top 4 singular values of a 300×200 matrix with a slowly decaying
// spectrum σ_i = (1+i)^−0.5, from the default randomized SVD (block Krylov:
// 5 steps, 11 products with W) and from subspace iteration with as many
// products, against the exact values.
func ExampleRandomizedSVD() {
	w, err := lowranktest.WithSpectrum[float64](300, 200, lowranktest.PowerLawSpectrum(200, 1, 0.5), 7)
	if err != nil {
		panic(err)
	}
	krylov, err := lowrank.RandomizedSVD(w, 4, lowrank.RandomizedOptions{Seed: 1})
	if err != nil {
		panic(err)
	}
	subspace, err := lowrank.RandomizedSVD(w, 4, lowrank.RandomizedOptions{
		Algorithm: lowrank.RandomizedSubspace, NIter: 4, Oversample: -1, Seed: 1})
	if err != nil {
		panic(err)
	}
	for i := range 4 {
		fmt.Printf("σ_%d exact %.5f  krylov %.5f  subspace %.5f\n", i, lowranktest.PowerLawSpectrum(200, 1, 0.5)[i], krylov.S[i], subspace.S[i])
	}
	// Output:
	// σ_0 exact 1.00000  krylov 1.00000  subspace 1.00000
	// σ_1 exact 0.70711  krylov 0.70711  subspace 0.70710
	// σ_2 exact 0.57735  krylov 0.57735  subspace 0.57427
	// σ_3 exact 0.50000  krylov 0.50000  subspace 0.41927
}
