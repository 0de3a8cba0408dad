package hyperparam_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/hyperparam"
)

func ptr(x float64) *float64 { return &x }

var params = []method.HyperParam{
	{Name: "threshold", Type: method.Float, Default: method.Value{Float: 0.9}, Min: ptr(0), Max: ptr(1)},
	{Name: "steps", Type: method.Int, Default: method.Value{Int: 3}, Min: ptr(1)},
	{Name: "measure", Type: method.String, Default: method.Value{String: "energy"}, Choices: []string{"energy", "nuclear"}},
	{Name: "flip", Type: method.Bool},
}

func TestParseAndResolve(t *testing.T) {
	got, err := hyperparam.Parse(params, []string{"threshold=0.25", "measure=nuclear", "flip=true"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]method.Value{"threshold": {Float: 0.25}, "steps": {Int: 3}, "measure": {String: "nuclear"}, "flip": {Bool: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, c := range []struct{ in, err string }{
		{"threshold=1.5", `"threshold": 1.5 is above the maximum 1`},
		{"steps=0", `"steps": 0 is below the minimum 1`},
		{"steps=2.5", `"steps": "2.5" is not a valid int`},
		{"measure=loud", `"loud" is not one of energy, nuclear`},
		{"speed=3", `unknown hyperparameter "speed" (known: threshold, steps, measure, flip)`},
		{"threshold", `want name=value`},
		{"threshold=NaN", `NaN is not finite`},
	} {
		_, err := hyperparam.Parse(params, []string{c.in})
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want it to contain %q", c.in, err, c.err)
		}
	}
}

func TestCheckMetadata(t *testing.T) {
	good := method.Metadata{Name: "energy", Hyperparameters: params}
	if err := hyperparam.CheckMetadata(good); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		md  method.Metadata
		err string
	}{
		{method.Metadata{Name: "Bad Name"}, "method name"},
		{method.Metadata{Name: "m", Hyperparameters: []method.HyperParam{params[0], params[0]}}, "declared twice"},
		{method.Metadata{Name: "m", Hyperparameters: []method.HyperParam{{Name: "x", Type: "complex"}}}, "unknown type"},
		{method.Metadata{Name: "m", Hyperparameters: []method.HyperParam{{Name: "x", Type: method.Float, Min: ptr(2), Max: ptr(1)}}}, "min 2 > max 1"},
		{method.Metadata{Name: "m", Hyperparameters: []method.HyperParam{{Name: "x", Type: method.Float, Default: method.Value{Float: 5}, Max: ptr(1)}}}, "default of"},
		{method.Metadata{Name: "m", Hyperparameters: []method.HyperParam{{Name: "x", Type: method.Bool, Min: ptr(0)}}}, "has a range"},
	} {
		if err := hyperparam.CheckMetadata(c.md); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: error %v, want %q", c.md, err, c.err)
		}
	}
}
