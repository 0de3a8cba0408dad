// Package hyperparam checks, completes and parses the hyperparameters of a
// method against the method's declared method.HyperParam list.
package hyperparam

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prism-lora/prism/core/method"
)

// validName is what a hyperparameter or method name may look like.
var validName = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)

// CheckMetadata checks a method's self-description: a valid name, unique
// valid hyperparameter names, known types, Min ≤ Max, bounds only on
// numeric parameters, and defaults that satisfy their own constraints.
func CheckMetadata(md method.Metadata) error {
	if !validName.MatchString(md.Name) {
		return fmt.Errorf("method name %q: want lower-case letters, digits, '_', '.', '-', starting with a letter", md.Name)
	}
	seen := map[string]bool{}
	for _, p := range md.Hyperparameters {
		if !validName.MatchString(p.Name) {
			return fmt.Errorf("method %q: hyperparameter name %q: want lower-case letters, digits, '_', '.', '-', starting with a letter", md.Name, p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("method %q: hyperparameter %q declared twice", md.Name, p.Name)
		}
		seen[p.Name] = true
		switch p.Type {
		case method.Int, method.Float:
			if len(p.Choices) > 0 {
				return fmt.Errorf("method %q: hyperparameter %q is %s but has choices", md.Name, p.Name, p.Type)
			}
			if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
				return fmt.Errorf("method %q: hyperparameter %q has min %g > max %g", md.Name, p.Name, *p.Min, *p.Max)
			}
		case method.Bool, method.String:
			if p.Min != nil || p.Max != nil {
				return fmt.Errorf("method %q: hyperparameter %q is %s but has a range", md.Name, p.Name, p.Type)
			}
			if p.Type == method.Bool && len(p.Choices) > 0 {
				return fmt.Errorf("method %q: hyperparameter %q is bool but has choices", md.Name, p.Name)
			}
		default:
			return fmt.Errorf("method %q: hyperparameter %q has unknown type %q (want int, float, bool or string)", md.Name, p.Name, p.Type)
		}
		if err := check(p, p.Default); err != nil {
			return fmt.Errorf("method %q: default of %w", md.Name, err)
		}
	}
	return nil
}

// check tests one value against its parameter's type constraints.
func check(p method.HyperParam, v method.Value) error {
	var x float64
	switch p.Type {
	case method.Int:
		x = float64(v.Int)
	case method.Float:
		x = v.Float
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("hyperparameter %q: %g is not finite", p.Name, x)
		}
	case method.String:
		if len(p.Choices) > 0 && !slices.Contains(p.Choices, v.String) {
			return fmt.Errorf("hyperparameter %q: %q is not one of %s", p.Name, v.String, strings.Join(p.Choices, ", "))
		}
		return nil
	default:
		return nil
	}
	if p.Min != nil && x < *p.Min {
		return fmt.Errorf("hyperparameter %q: %s is below the minimum %g", p.Name, format(p.Type, v), *p.Min)
	}
	if p.Max != nil && x > *p.Max {
		return fmt.Errorf("hyperparameter %q: %s is above the maximum %g", p.Name, format(p.Type, v), *p.Max)
	}
	return nil
}

// Resolve checks given values against params (no unknown names; each value
// within its range or choices) and returns a map with a value for every
// parameter: the given one, or its default.
func Resolve(params []method.HyperParam, given map[string]method.Value) (map[string]method.Value, error) {
	out := make(map[string]method.Value, len(params))
	byName := map[string]method.HyperParam{}
	for _, p := range params {
		byName[p.Name] = p
		out[p.Name] = p.Default
	}
	for _, name := range sortedKeys(given) {
		p, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("unknown hyperparameter %q (known: %s)", name, names(params))
		}
		v := given[name]
		if err := check(p, v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// Parse converts "name=value" strings, as given on a command line, to typed
// values according to params, then resolves them (see Resolve).
func Parse(params []method.HyperParam, assignments []string) (map[string]method.Value, error) {
	byName := map[string]method.HyperParam{}
	for _, p := range params {
		byName[p.Name] = p
	}
	given := map[string]method.Value{}
	for _, a := range assignments {
		name, text, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("hyperparameter %q: want name=value", a)
		}
		p, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("unknown hyperparameter %q (known: %s)", name, names(params))
		}
		var v method.Value
		var err error
		switch p.Type {
		case method.Int:
			v.Int, err = strconv.ParseInt(text, 10, 64)
		case method.Float:
			v.Float, err = strconv.ParseFloat(text, 64)
		case method.Bool:
			v.Bool, err = strconv.ParseBool(text)
		case method.String:
			v.String = text
		}
		if err != nil {
			return nil, fmt.Errorf("hyperparameter %q: %q is not a valid %s", name, text, p.Type)
		}
		given[name] = v
	}
	return Resolve(params, given)
}

// Format renders a value of type t as text (the inverse of Parse).
func Format(t method.HyperType, v method.Value) string { return format(t, v) }

func format(t method.HyperType, v method.Value) string {
	switch t {
	case method.Int:
		return strconv.FormatInt(v.Int, 10)
	case method.Float:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case method.Bool:
		return strconv.FormatBool(v.Bool)
	}
	return v.String
}

func names(params []method.HyperParam) string {
	if len(params) == 0 {
		return "none"
	}
	var ns []string
	for _, p := range params {
		ns = append(ns, p.Name)
	}
	return strings.Join(ns, ", ")
}

func sortedKeys(m map[string]method.Value) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
