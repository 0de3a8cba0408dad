// Command prism-method-stride is an example third-party prism plugin, in
// its own Go module, that imports nothing of prism but the plugin SDK.
//
// The stride method spreads the adapter over the whole spectrum instead of
// one window: with k = min(m, n) singular components and rank r, it takes
// every ⌊k/r⌋-th component, c_j = j·⌊k/r⌋ + offset (j = 0 … r−1), and
// builds B = U[:, c]·diag(√(S_c/scale)), A = diag(√(S_c/scale))·V[:, c]ᵀ,
// Base = W − scale·B·A.
//
// Build it as prism-method-stride, put it on $PRISM_PLUGIN_PATH, and pin it:
//
//	go build -o ~/.local/share/prism/plugins/prism-method-stride .
//	prism plugins pin ~/.local/share/prism/plugins/prism-method-stride
package main

import (
	"context"
	"fmt"

	"github.com/prism-lora/prism/plugins/sdk"
)

type stride struct{}

func (stride) Metadata() sdk.Metadata {
	zero := 0.0
	return sdk.Metadata{
		Name:        "stride",
		Version:     "0.1.0",
		Description: "r singular components spread evenly over the spectrum (every ⌊k/r⌋-th, shifted by offset)",
		NeedsSVD:    true,
		Hyperparameters: []sdk.HyperParam{{
			Name: "offset", Type: sdk.Int, Default: sdk.Value{Int: 0}, Min: &zero,
			Description: "shift of every index within its stride (clamped to stride−1)",
		}},
	}
}

func (stride) Init(_ context.Context, req sdk.Request) (sdk.Result, error) {
	k := min(req.Weight.Rows, req.Weight.Cols)
	step := k / req.Rank
	offset := min(int(req.Hyper["offset"].Int), step-1)
	idx := make([]int, req.Rank)
	for j := range idx {
		idx[j] = j*step + offset
	}
	res, err := sdk.ComponentAdapter(req, idx)
	res.Note = fmt.Sprintf("every %d-th component from %d", step, offset)
	return res, err
}

func main() { sdk.ServeMethod(stride{}) }
