package adapter_test

import (
	"context"
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/backend"
)

// A pretrained 4×3 layer gets a PiSSA adapter of rank 1 (α = 2): its
// output is unchanged at step 0, only A and B train, and merging gives W back.
func ExampleAttach() {
	ctx := mlctx.New()
	layer := ctx.In("enc")
	layer.VariableWithValue(adapter.WeightName, [][]float32{{3, 0, 0}, {0, 2, 0}, {0, 0, 1}, {0, 0, 0}})
	layer.VariableWithValue(adapter.BiasName, []float32{0, 0, 0, 1})

	plan := adapter.NewPlan(adapter.Config{Method: adapter.MethodPiSSA, Rank: 1, Alpha: 2}, "enc")
	a, err := adapter.Attach(context.Background(), ctx, plan, []adapter.Layer{{Name: "enc", Out: 4, In: 3}}, adapter.Options{})
	if err != nil {
		panic(err)
	}
	l, _ := a.Layer("enc")
	fmt.Printf("window start %d, scale %g, trainable values %d\n", l.Start, l.Scale, a.TrainableParams())
	for v := range ctx.IterVariables() {
		fmt.Printf("%s trainable=%v\n", v.ScopeAndName(), v.Trainable)
	}

	b, err := backend.New("go")
	if err != nil {
		panic(err)
	}
	linear := a.Linear(nil) // every layer here is adapted: no fallback needed
	y, err := mlctx.ExecOnce(b, ctx, func(ctx *mlctx.Context, x *Node) *Node {
		return linear(ctx, "enc", x, 4)
	}, tensors.FromValue([][]float32{{1, 1, 1}}))
	if err != nil {
		panic(err)
	}
	fmt.Printf("y = %.5f\n", y.Value())
	w1, _ := a.Merged(ctx, "enc")
	fmt.Printf("merged W₁ row 0 = %.5f\n", w1.Data[:3])
	// Output:
	// window start 0, scale 2, trainable values 7
	// /enc/weight trainable=false
	// /enc/bias trainable=false
	// /enc/lora_A trainable=true
	// /enc/lora_B trainable=true
	// y = [[3.00000 2.00000 1.00000 1.00000]]
	// merged W₁ row 0 = [3.00000 0.00000 0.00000]
}
