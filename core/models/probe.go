package models

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Forward is a model's forward pass as the helpers here call it, e.g.
//
//	func(ctx *context.Context, run models.Run, x *Node) *Node { return models.ViT(ctx, cfg, run, x) }
type Forward func(ctx *context.Context, run Run, x *Node) *Node

// LayerInputs runs forward on x and returns the inputs of the named linear
// layers, each flattened to [N, in] (N = the product of the leading axes, e.g.
// batch·tokens), in the order of names. run's Linear (e.g. adapters) is kept;
// its Probe is replaced. Unknown names are an error listing the layers seen.
func LayerInputs(backend backends.Backend, ctx *context.Context, run Run, forward Forward, x *tensors.Tensor, names ...string) ([]*tensors.Tensor, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var seen []string
	var missing error
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, x *Node) []*Node {
		captured := make(map[string]*Node, len(names))
		seen = seen[:0]
		probed := run
		probed.Probe = func(name string, in *Node) {
			seen = append(seen, name)
			captured[name] = in
		}
		forward(ctx, probed, x)
		outs := make([]*Node, len(names))
		for i, name := range names {
			in, ok := captured[name]
			if !ok {
				missing = fmt.Errorf("models: no linear layer %q in this model (layers: %v)", name, seen)
				return []*Node{Zeros(x.Graph(), x.Shape())}
			}
			d := in.Shape().Dimensions
			outs[i] = Reshape(in, in.Shape().Size()/d[len(d)-1], d[len(d)-1])
		}
		return outs
	})
	if err != nil {
		return nil, err
	}
	outs, err := exec.Exec(x)
	if missing != nil {
		return nil, missing
	}
	if err != nil {
		return nil, fmt.Errorf("models: probing layer inputs: %w", err)
	}
	return outs, nil
}
