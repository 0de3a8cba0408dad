package builtin_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/core/method/hyperparam"
	"github.com/prism-lora/prism/core/method/verify"
)

func weight(dt method.DType, m, n int) method.Matrix {
	rng := rand.New(rand.NewPCG(1, 2))
	w := method.Matrix{DType: dt, Rows: m, Cols: n}
	for i := 0; i < m*n; i++ {
		v := rng.NormFloat64() / float64(1+i%n)
		if dt == method.Float32 {
			w.F32 = append(w.F32, float32(v))
		} else {
			w.F64 = append(w.F64, v)
		}
	}
	return w
}

// Every built-in method, through the interface, passes the host's checks
// (shapes, finiteness, identity), and with a precomputed SVD gives exactly
// what lowrank.Init gives.
func TestBuiltinsSatisfyTheContract(t *testing.T) {
	ctx := context.Background()
	for _, name := range builtin.Names() {
		m, err := builtin.New(name)
		if err != nil {
			t.Fatal(err)
		}
		md := m.Metadata()
		if err := hyperparam.CheckMetadata(md); err != nil {
			t.Fatal(err)
		}
		for _, dt := range []method.DType{method.Float32, method.Float64} {
			for _, shape := range [][2]int{{20, 12}, {12, 20}} {
				w := weight(dt, shape[0], shape[1])
				hyper, err := hyperparam.Parse(md.Hyperparameters, nil)
				if err != nil {
					t.Fatal(err)
				}
				if name == lowrank.MethodWindow {
					hyper["window"] = method.Value{String: "start=3"}
				}
				req := method.Request{Layer: "l", Weight: w, Rank: 4, Alpha: 8, Scale: 2, Seed: 9, Hyper: hyper}
				res, err := m.Init(ctx, req)
				if err != nil {
					t.Fatalf("%s %s: %v", name, dt, err)
				}
				if err := verify.Result(req, res); err != nil {
					t.Errorf("%s %s %v: %v", name, dt, shape, err)
				}
				svd, err := builtin.ThinSVD(w)
				if err != nil {
					t.Fatal(err)
				}
				req.SVD = svd
				res2, err := m.Init(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if err := verify.Result(req, res2); err != nil {
					t.Errorf("%s %s with SVD: %v", name, dt, err)
				}
				if !slices.Equal(res.Components, res2.Components) {
					t.Errorf("%s: components %v without SVD, %v with", name, res.Components, res2.Components)
				}
			}
		}
	}
}

func TestScaleMismatchIsAnError(t *testing.T) {
	m, _ := builtin.New("pissa")
	_, err := m.Init(context.Background(), method.Request{Layer: "q", Weight: weight(method.Float64, 6, 5), Rank: 2, Alpha: 4, Scale: 1})
	if err == nil {
		t.Fatal("scale 1 with alpha 4, rank 2 accepted")
	}
}

func ExampleMethod_Init() {
	m, _ := builtin.New("milora")
	w := method.Matrix{DType: method.Float64, Rows: 3, Cols: 3, F64: []float64{3, 0, 0, 0, 2, 0, 0, 0, 1}}
	res, _ := m.Init(context.Background(), method.Request{Layer: "diag", Weight: w, Rank: 1, Alpha: 1, Scale: 1,
		Hyper: map[string]method.Value{"svd": {String: "full"}}})
	fmt.Println("components:", res.Components)
	fmt.Printf("base diagonal: %.0f %.0f %.0f\n", res.Base.F64[0], res.Base.F64[4], res.Base.F64[8])
	// Output:
	// components: [2]
	// base diagonal: 3 2 0
}
