package adapter

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
)

// midMethod is an in-process external method that computes the built-in mid
// window under another name (so its adapters can be compared with the
// built-in's), optionally breaking the identity or failing.
type midMethod struct {
	name     string
	breakIt  bool // Base = W: Base + scale·B·A ≠ W
	declare  bool // declare ChangesFunction
	fail     error
	requests chan method.Request
}

func (m midMethod) Metadata() method.Metadata {
	return method.Metadata{Name: m.name, Version: "test", NeedsSVD: true,
		Hyperparameters: []method.HyperParam{{Name: "shift", Type: method.Int, Default: method.Value{Int: 0}}}}
}

func (m midMethod) Init(ctx context.Context, req method.Request) (method.Result, error) {
	if m.requests != nil {
		m.requests <- req
	}
	if m.fail != nil {
		return method.Result{}, m.fail
	}
	mid, _ := builtin.New("mid")
	req.Hyper = map[string]method.Value{"svd": {String: "full"}}
	res, err := mid.Init(ctx, req)
	if err != nil {
		return res, err
	}
	if m.breakIt {
		res.Base = req.Weight
		res.ChangesFunction = m.declare
	}
	return res, nil
}

// TestExternalMethod: an external method's A, B and Base become the layer's
// adapter (here the mid window computed outside core/lowrank equals the
// built-in mid exactly), the step-0 output is the pretrained one, the
// request carries W₀, its SVD, rank, α, scale and a per-layer seed, and the
// window is recorded from the returned components.
func TestExternalMethod(t *testing.T) {
	reqs := make(chan method.Request, 8)
	ext := Config{Method: "midx", Rank: 3, Alpha: 6, Seed: 9, External: midMethod{name: "midx", requests: reqs},
		Hyper: map[string]method.Value{"shift": {Int: 2}}}
	if got := ext.String(); got != "midx r=3 α=6 shift=2" {
		t.Errorf("label %q", got)
	}
	ctx := newToy(t, dtypes.Float64, 42)
	x := randomInput(dtypes.Float64, 5, 9, 1)
	before := run(t, ctx, plainDense, x)
	a, err := Attach(context.Background(), ctx, NewPlan(ext, backboneTargets...), toyLayers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	close(reqs)
	if d := maxRelDiff(run(t, ctx, a.Linear(plainDense), x), before); d > 1e-12 {
		t.Errorf("step-0 output differs from the pretrained network by %.3g", d)
	}
	seen := map[string]bool{}
	for req := range reqs {
		seen[req.Layer] = true
		if req.Rank != 3 || req.Alpha != 6 || req.Scale != 2 || req.Hyper["shift"].Int != 2 || req.SVD == nil ||
			req.Weight.DType != method.Float64 || req.Seed != layerSeed(9, req.Layer) {
			t.Errorf("request for %s: rank %d α %g scale %g hyper %v svd %v dtype %s seed %d", req.Layer, req.Rank, req.Alpha,
				req.Scale, req.Hyper, req.SVD != nil, req.Weight.DType, req.Seed)
		}
	}
	if len(seen) != 2 || !seen["enc"] || !seen["blocks.0.fc"] {
		t.Errorf("requests for %v, want enc and blocks.0.fc", seen)
	}
	ref := newToy(t, dtypes.Float64, 42)
	b, err := Attach(context.Background(), ref, NewPlan(Config{Method: MethodMid, Rank: 3, Alpha: 6}, backboneTargets...), toyLayers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range a.Layers() {
		r, _ := b.Layer(l.Name)
		s, rank, ok := l.Window()
		if !ok || s != r.Start || rank != 3 || l.SVD == nil {
			t.Errorf("%s: window (%d, %d, %v), want (%d, 3, true) and the SVD kept", l.Name, s, rank, ok, r.Start)
		}
		if d := maxRelDiff(l.InitA.Data, r.InitA.Data) + maxRelDiff(l.InitB.Data, r.InitB.Data); d > 1e-12 {
			t.Errorf("%s: external A, B differ from the built-in mid's by %.3g", l.Name, d)
		}
		if l.TrainableParams() != 3*(l.Out+l.In) {
			t.Errorf("%s: %d trainable parameters", l.Name, l.TrainableParams())
		}
	}
}

// TestExternalMethodErrors: a method that breaks W = Base + scale·B·A
// without declaring it, one that fails, or one under a built-in or wrong
// name is refused, and the method's own error stays in the chain.
func TestExternalMethodErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Method: "brk", Rank: 2, External: midMethod{name: "brk", breakIt: true}}, "does not reproduce W"},
		{Config{Method: "bad", Rank: 2, External: midMethod{name: "bad", fail: boom}}, `layer "enc": method bad: boom`},
		{Config{Method: "mid", Rank: 2, External: midMethod{name: "mid"}}, `method "mid" is built in`},
		{Config{Method: "one", Rank: 2, External: midMethod{name: "two"}}, `calls itself "two"`},
		{Config{Method: "nor", Rank: 0, External: midMethod{name: "nor"}}, "rank 0"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			ctx := newToy(t, dtypes.Float64, 1)
			_, err := Attach(context.Background(), ctx, NewPlan(tc.c, backboneTargets...), toyLayers, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if tc.c.Method == "bad" && !errors.Is(err, boom) {
				t.Errorf("the method's error is not in the chain: %v", err)
			}
		})
	}
	// Declared: the function changes and Attach accepts it.
	ctx := newToy(t, dtypes.Float64, 1)
	c := Config{Method: "chg", Rank: 2, External: midMethod{name: "chg", breakIt: true, declare: true}}
	a, err := Attach(context.Background(), ctx, NewPlan(c, backboneTargets...), toyLayers, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := a.Layer("enc")
	w1, err := a.Merged(ctx, "enc")
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(w1.Data, l.Pretrained.Data); d < 1e-3 {
		t.Errorf("declared function change, but the merged weight equals W₀ (diff %.3g)", d)
	}
}
