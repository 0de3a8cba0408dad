package adapter

import (
	"fmt"
	"regexp"
)

// Layer names a linear layer of a model and its shape: W is Out×In.
type Layer struct {
	Name    string
	Out, In int
}

// Rule adapts the layers whose name matches Target with Config. Target is a
// layer name (exact match) or a regular expression matched against the whole
// name, e.g. `blocks\.\d+\.attn\.qkv` or `blocks\.[0-3]\..*`.
type Rule struct {
	Target string
	Config Config
}

// Plan maps layer names to adapter configs: each layer takes the Config of the
// first rule whose Target matches it; layers no rule matches are left alone
// (frozen, plain linear). The zero Plan adapts nothing.
type Plan struct {
	Rules []Rule
}

// NewPlan is a plan applying c to every layer matching one of targets.
func NewPlan(c Config, targets ...string) Plan {
	p := Plan{}
	for _, t := range targets {
		p.Rules = append(p.Rules, Rule{Target: t, Config: c})
	}
	return p
}

// Assignment is a layer and the config the plan gives it.
type Assignment struct {
	Layer  Layer
	Config Config
}

// compiled is a rule with its target compiled.
type compiled struct {
	rule Rule
	re   *regexp.Regexp
}

func (p Plan) compile() ([]compiled, error) {
	out := make([]compiled, len(p.Rules))
	for i, r := range p.Rules {
		if r.Target == "" {
			return nil, fmt.Errorf("adapter: plan rule %d has an empty target", i)
		}
		re, err := regexp.Compile(`^(?:` + r.Target + `)$`)
		if err != nil {
			return nil, fmt.Errorf("adapter: plan rule %d: target %q is neither a layer name nor a regular expression: %v", i, r.Target, err)
		}
		if err := r.Config.Validate(); err != nil {
			return nil, fmt.Errorf("adapter: plan rule %d (target %q): %w", i, r.Target, err)
		}
		out[i] = compiled{rule: r, re: re}
	}
	return out, nil
}

func (c compiled) matches(name string) bool { return name == c.rule.Target || c.re.MatchString(name) }

// Resolve assigns configs to the model's layers, in the order of layers. It
// fails when a rule matches no layer (a mistyped target must not silently
// adapt nothing), naming the target and the layers there are.
func (p Plan) Resolve(layers []Layer) ([]Assignment, error) {
	rules, err := p.compile()
	if err != nil {
		return nil, err
	}
	used := make([]bool, len(rules))
	var out []Assignment
	seen := map[string]bool{}
	for _, l := range layers {
		if seen[l.Name] {
			return nil, fmt.Errorf("adapter: layer %q is listed twice", l.Name)
		}
		seen[l.Name] = true
		for i, r := range rules {
			if r.matches(l.Name) {
				used[i] = true
				out = append(out, Assignment{Layer: l, Config: r.rule.Config})
				break
			}
		}
	}
	for i, u := range used {
		if !u {
			names := make([]string, len(layers))
			for j, l := range layers {
				names[j] = l.Name
			}
			return nil, fmt.Errorf("adapter: plan target %q matches no layer (layers: %v)", rules[i].rule.Target, names)
		}
	}
	return out, nil
}
