package experiment

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Run is one grid point with its content address.
type Run struct {
	ID     string
	Config RunConfig
}

// Expand turns the spec's grid into fully resolved runs, in a stable order
// (methods in spec order; then window, rank, alpha, learning rate, epochs and
// seed, seed varying fastest). The rules:
//
//   - Each method takes the grid's axes, replaced axis by axis by
//     grid.overrides.<method> where given.
//   - Windowed methods (window) multiply by every window start: each of
//     window_starts (Window{Preset: "start"}) and then each of window_fractions
//     (Window{Preset: "fraction"}). Methods with a fixed window (pissa, milora,
//     mid) get that preset once. Other methods get no window and are not
//     multiplied by the window axes.
//   - Adapter methods (everything but full and head) multiply by ranks ×
//     alphas (no alphas: α = r) and carry the adapter targets, rslora and svd
//     settings; full and head runs have rank 0, alpha 0 and no targets.
//   - Every method multiplies by learning_rates × epochs × seeds.
//   - grid.method_params.<method> is attached to that method's runs.
//
// Two grid points that resolve to the same configuration (and so the same ID)
// appear once.
func (s *Spec) Expand() ([]Run, error) {
	var runs []Run
	seen := map[string]bool{}
	base := RunConfig{
		Schema: RunSchema,
		Kind:   s.Kind,
		Model:  ModelConfig{Name: s.Model.Name, Params: s.Model.Params},
		Finetune: FinetuneConfig{
			Tasks:     append([]string(nil), s.Finetune.Tasks...),
			BatchSize: s.Finetune.BatchSize,
			Params:    s.Finetune.Params,
		},
	}
	if p := s.Pretrain; p != nil {
		base.Pretrain = &PretrainConfig{
			Task: p.Task, Checkpoint: p.Checkpoint, Epochs: p.Epochs, LearningRate: p.LearningRate,
			BatchSize: p.BatchSize, Seed: p.Seed, Params: p.Params,
		}
	}
	for _, m := range s.Grid.Methods {
		t, ok := LookupMethod(m)
		if !ok {
			return nil, s.Errorf("grid.methods", "unknown method %q", m)
		}
		ax := s.axesFor(m)
		var windows []*Window
		switch {
		case t.Windowed:
			for _, st := range ax.WindowStarts {
				windows = append(windows, &Window{Preset: "start", Start: st})
			}
			for _, f := range ax.WindowFractions {
				windows = append(windows, &Window{Preset: "fraction", Fraction: f})
			}
		case t.Window != "":
			windows = []*Window{{Preset: t.Window}}
		default:
			windows = []*Window{nil}
		}
		ranks, alphas := []int{0}, []float64{0}
		if t.Adapter {
			ranks, alphas = ax.Ranks, ax.Alphas
			if len(alphas) == 0 {
				alphas = []float64{0} // α = r, filled in below
			}
		}
		for _, w := range windows {
			for _, r := range ranks {
				for _, a := range alphas {
					for _, lr := range ax.LearningRates {
						for _, ep := range ax.Epochs {
							for _, seed := range ax.Seeds {
								c := base
								c.Method = m
								c.MethodParams = s.Grid.MethodParams[m]
								c.Window = w
								c.LearningRate, c.Epochs, c.Seed = lr, ep, seed
								if t.Adapter {
									c.Rank, c.Alpha = r, a
									if a == 0 {
										c.Alpha = float64(r)
									}
									c.Targets = append([]string(nil), s.Adapter.Targets...)
									c.RSLoRA, c.SVD = s.Adapter.RSLoRA, s.Adapter.SVD
								}
								id, err := c.ID()
								if err != nil {
									return nil, s.Errorf("grid", "cannot encode the run configuration: %v", err)
								}
								if !seen[id] {
									seen[id] = true
									runs = append(runs, Run{ID: id, Config: c})
								}
							}
						}
					}
				}
			}
		}
	}
	return runs, nil
}

// axesFor returns the grid axes of method m after its overrides.
func (s *Spec) axesFor(m string) GridOverride {
	g := s.Grid
	ax := GridOverride{
		WindowStarts: g.WindowStarts, WindowFractions: g.WindowFractions, Ranks: g.Ranks, Alphas: g.Alphas,
		LearningRates: g.LearningRates, Seeds: g.Seeds, Epochs: g.Epochs,
	}
	o, ok := g.Overrides[m]
	if !ok {
		return ax
	}
	if len(o.WindowStarts)+len(o.WindowFractions) > 0 {
		ax.WindowStarts, ax.WindowFractions = o.WindowStarts, o.WindowFractions
	}
	if len(o.Ranks) > 0 {
		ax.Ranks = o.Ranks
	}
	if len(o.Alphas) > 0 {
		ax.Alphas = o.Alphas
	}
	if len(o.LearningRates) > 0 {
		ax.LearningRates = o.LearningRates
	}
	if len(o.Seeds) > 0 {
		ax.Seeds = o.Seeds
	}
	if len(o.Epochs) > 0 {
		ax.Epochs = o.Epochs
	}
	return ax
}

// ValidateRuns asks the run kind to check each run's configuration; a
// FieldError is reported at its field's line in the spec, other errors at the
// spec's kind. Each distinct message is reported once.
func (s *Spec) ValidateRuns(runs []Run, k Kind) error {
	if k.Validate == nil {
		return nil
	}
	var errs SpecErrors
	seen := map[string]bool{}
	for _, r := range runs {
		err := k.Validate(r.Config)
		if err == nil {
			continue
		}
		var fe *FieldError
		var se *SpecError
		switch {
		case errors.As(err, &fe):
			se = s.Errorf(fe.Field, "%s", fe.Msg)
		default:
			se = s.Errorf("kind", "run kind %q rejects %s: %v", k.Name, r.Config.Label(), err)
		}
		if key := se.Error(); !seen[key] {
			seen[key] = true
			errs = append(errs, se)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// TargetMatcher returns a function reporting whether a layer name is an
// adapter target: equal to one of targets, or fully matched by one taken as a
// regular expression. No targets match nothing.
func TargetMatcher(targets []string) (func(layer string) bool, error) {
	var res []*regexp.Regexp
	for i, t := range targets {
		re, err := regexp.Compile("^(?:" + t + ")$")
		if err != nil {
			return nil, fmt.Errorf("experiment: adapter target %d %q: %v", i, t, err)
		}
		res = append(res, re)
	}
	return func(layer string) bool {
		for i, re := range res {
			if targets[i] == layer || re.MatchString(layer) {
				return true
			}
		}
		return false
	}, nil
}

// Describe summarises a run list: total and per-method counts.
func Describe(runs []Run) string {
	counts := map[string]int{}
	var order []string
	for _, r := range runs {
		if counts[r.Config.Method] == 0 {
			order = append(order, r.Config.Method)
		}
		counts[r.Config.Method]++
	}
	parts := make([]string, len(order))
	for i, m := range order {
		parts[i] = m + " " + strconv.Itoa(counts[m])
	}
	return fmt.Sprintf("%d runs (%s)", len(runs), strings.Join(parts, ", "))
}
