package finetune

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/prism-lora/prism/core/experiment"
)

// params reads the free-form parameters of one spec section (model.params,
// pretrain.params, finetune.params), reporting problems as FieldErrors at
// the section's field. Numbers arrive as float64 from JSON (Slurm tasks) and
// as int or float64 from YAML, so both are accepted.
type params struct {
	field string
	m     map[string]any
}

// check rejects keys that are not in allowed, naming the closest allowed one.
func (p params) check(allowed ...string) error {
	keys := make([]string, 0, len(p.m))
	for k := range p.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return &experiment.FieldError{Field: p.field + "." + k,
				Msg: fmt.Sprintf("unknown parameter of the %s kind (expected one of: %s)", Name, strings.Join(allowed, ", "))}
		}
	}
	return nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint:
		return float64(x), true
	}
	return 0, false
}

// int reads an integer ≥ lo (def when absent).
func (p params) int(key string, def, lo int) (int, error) {
	v, ok := p.m[key]
	if !ok {
		return def, nil
	}
	x, isNum := number(v)
	if !isNum || x != math.Trunc(x) || x < float64(lo) || x > math.MaxInt32 {
		return 0, &experiment.FieldError{Field: p.field + "." + key, Msg: fmt.Sprintf("expected an integer ≥ %d, got %v", lo, v)}
	}
	return int(x), nil
}

// float reads a number in [lo, hi] (def when absent).
func (p params) float(key string, def, lo, hi float64) (float64, error) {
	v, ok := p.m[key]
	if !ok {
		return def, nil
	}
	x, isNum := number(v)
	if !isNum || !(x >= lo && x <= hi) {
		return 0, &experiment.FieldError{Field: p.field + "." + key, Msg: fmt.Sprintf("expected a number in [%g, %g], got %v", lo, hi, v)}
	}
	return x, nil
}

// bool reads true or false (def when absent).
func (p params) bool(key string, def bool) (bool, error) {
	v, ok := p.m[key]
	if !ok {
		return def, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, &experiment.FieldError{Field: p.field + "." + key, Msg: fmt.Sprintf("expected true or false, got %v", v)}
	}
	return b, nil
}

// ints reads one positive integer or a list of them (def when absent).
func (p params) ints(key string, def []int) ([]int, error) {
	v, ok := p.m[key]
	if !ok {
		return def, nil
	}
	bad := &experiment.FieldError{Field: p.field + "." + key, Msg: fmt.Sprintf("expected a positive integer or a list of them, got %v", v)}
	var items []any
	switch x := v.(type) {
	case []any:
		items = x
	default:
		items = []any{x}
	}
	if len(items) == 0 {
		return nil, bad
	}
	out := make([]int, len(items))
	for i, it := range items {
		x, isNum := number(it)
		if !isNum || x != math.Trunc(x) || x < 1 || x > math.MaxInt32 {
			return nil, bad
		}
		out[i] = int(x)
	}
	return out, nil
}
