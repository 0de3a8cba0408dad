package train

import (
	"encoding/json"
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/adapter"
)

// Network is a classifier backbone with named linear layers, as the loops
// need it: everything is a plain function of a context scope and graph
// nodes, so any model (core/models' ViT and MLP, or a test's own) fits.
//
// The backbone maps inputs [B, InputShape…] to features [B, FeatureDim];
// each task has its own classification head, a linear layer features →
// classes named by the task (HeadA for pretraining, HeadB for fine-tuning).
type Network struct {
	// Kind names the architecture, e.g. "vit" or "mlp".
	Kind string
	// Config is the architecture's configuration; its JSON encoding is part
	// of the pretrained cache key.
	Config any
	// InputShape is one example's shape, e.g. [28, 28, 1]; it must equal
	// the dataset's example shape.
	InputShape []int
	// Layers are the backbone's linear layers in forward order (no heads).
	Layers []adapter.Layer
	// FeatureDim is the width of the backbone's output.
	FeatureDim int
	// Features runs the backbone in ctx (the model scope): every linear
	// layer is computed by linear.
	Features func(ctx *mlctx.Context, linear adapter.LinearFunc, x *Node) *Node
	// Dense is the plain linear layer; it creates the layer's variables
	// ("weight" out×in, "bias" out) when they do not exist, seeded by Seed.
	Dense adapter.LinearFunc
	// Seed sets the seed from which Dense and the backbone draw new
	// variables' initial values in ctx.
	Seed func(ctx *mlctx.Context, seed int64)
}

// Head names of the two tasks.
const (
	HeadA = "head"       // the pretraining task's head (core/models' default head)
	HeadB = "head_taskB" // the fine-tuning task's new head
)

// Validate checks that n is complete.
func (n Network) Validate() error {
	switch {
	case n.Kind == "":
		return fmt.Errorf("network: no Kind")
	case len(n.InputShape) == 0:
		return fmt.Errorf("network %s: no InputShape", n.Kind)
	case n.FeatureDim <= 0:
		return fmt.Errorf("network %s: FeatureDim %d", n.Kind, n.FeatureDim)
	case n.Features == nil || n.Dense == nil || n.Seed == nil:
		return fmt.Errorf("network %s: Features, Dense and Seed must be set", n.Kind)
	}
	for _, l := range n.Layers {
		if l.Name == HeadA || l.Name == HeadB {
			return fmt.Errorf("network %s: backbone layer named %q collides with a head", n.Kind, l.Name)
		}
	}
	return nil
}

// configJSON is the canonical encoding of the architecture for cache keys.
func (n Network) configJSON() (json.RawMessage, error) {
	b, err := json.Marshal(struct {
		Kind       string `json:"kind"`
		Config     any    `json:"config"`
		InputShape []int  `json:"input_shape"`
	}{n.Kind, n.Config, n.InputShape})
	if err != nil {
		return nil, fmt.Errorf("network %s: encoding config: %w", n.Kind, err)
	}
	return b, nil
}

// logits computes the named head's logits: x → [B, classes].
func (n Network) logits(ctx *mlctx.Context, linear adapter.LinearFunc, x *Node, head string, classes int) *Node {
	return linear(ctx, head, n.Features(ctx, linear, x), classes)
}

// plain is the network's Linear without adapters.
func (n Network) plain() adapter.LinearFunc { return n.Dense }

// layerNames lists the backbone layer names.
func (n Network) layerNames() []string {
	names := make([]string, len(n.Layers))
	for i, l := range n.Layers {
		names[i] = l.Name
	}
	return names
}
