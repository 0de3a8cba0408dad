package train

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/datasets/dense"
)

// testSeedParam is the context parameter seeding testDense's new variables.
const testSeedParam = "test_seed"

// testDense is a plain linear layer creating its variables with
// U(−1/√in, 1/√in) values drawn from a stream keyed by the seed parameter
// and the variable's scope (so creation order does not matter).
func testDense(ctx *mlctx.Context, name string, x *Node, outDim int) *Node {
	in := x.Shape().Dimensions[x.Rank()-1]
	scope := ctx.In(name).Checked(false)
	param := func(vname string, dims ...int) *Node {
		if v := scope.GetVariableByScopeAndName(scope.Scope(), vname); v != nil {
			return v.ValueGraph(x.Graph())
		}
		seed := mlctx.GetParamOr(ctx, testSeedParam, int64(0))
		h := fnv.New64a()
		fmt.Fprintf(h, "%s/%s", scope.Scope(), vname)
		rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
		size := 1
		for _, d := range dims {
			size *= d
		}
		vals := make([]float32, size)
		bound := 1 / math.Sqrt(float64(in))
		for i := range vals {
			vals[i] = float32((2*rng.Float64() - 1) * bound)
		}
		return scope.VariableWithValue(vname, tensors.FromFlatDataAndDimensions(vals, dims...)).ValueGraph(x.Graph())
	}
	return adapter.Dense(x, param("weight", outDim, in), param("bias", outDim))
}

// testMLP is a small MLP backbone: flatten → fc1 → tanh → fc2 → tanh.
func testMLP(inputShape []int, hidden1, hidden2 int) Network {
	in := 1
	for _, d := range inputShape {
		in *= d
	}
	return Network{
		Kind:       "test-mlp",
		Config:     map[string]int{"in": in, "hidden1": hidden1, "hidden2": hidden2},
		InputShape: inputShape,
		Layers:     []adapter.Layer{{Name: "fc1", Out: hidden1, In: in}, {Name: "fc2", Out: hidden2, In: hidden1}},
		FeatureDim: hidden2,
		Features: func(ctx *mlctx.Context, linear adapter.LinearFunc, x *Node) *Node {
			h := Reshape(x, x.Shape().Dimensions[0], in)
			h = Tanh(linear(ctx, "fc1", h, hidden1))
			return Tanh(linear(ctx, "fc2", h, hidden2))
		},
		Dense: testDense,
		Seed:  func(ctx *mlctx.Context, seed int64) { ctx.SetParam(testSeedParam, seed) },
	}
}

// transposed is a real second task built from a dataset of square images:
// the same images transposed (a different input distribution, same labels).
func transposed(d datasets.InMemory) (datasets.InMemory, error) {
	spec := d.Spec()
	h, w := spec.ExampleShape[0], spec.ExampleShape[1]
	if h != w || len(spec.ExampleShape) != 3 || spec.ExampleShape[2] != 1 {
		return nil, fmt.Errorf("transposed: %s examples are %v, want square single-channel images", spec.Name, spec.ExampleShape)
	}
	var splits []dense.Split
	for _, sp := range spec.Splits {
		a, err := d.Arrays(sp.Name)
		if err != nil {
			return nil, err
		}
		in := make([]float32, len(a.Inputs))
		for n := 0; n < a.Size; n++ {
			for i := 0; i < h; i++ {
				for j := 0; j < w; j++ {
					in[n*h*w+j*w+i] = a.Inputs[n*h*w+i*w+j]
				}
			}
		}
		splits = append(splits, dense.Split{Name: sp.Name, Inputs: in, Labels: a.Labels})
	}
	spec.Name += "-transposed"
	spec.Description = "transposed " + spec.Description
	spec.Checksum = ""
	return dense.New(spec, splits...)
}

// testOpen serves "digits" and "digits-transposed" (and the real MNIST and
// Fashion-MNIST) from the catalog.
func testOpen(t testing.TB) OpenDataset {
	return func(_ context.Context, name string) (datasets.InMemory, error) {
		if name == "digits-transposed" {
			return transposed(catalogtest.Open(t, "digits"))
		}
		return catalogtest.Open(t, name), nil
	}
}
