package experiment

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Position is where a value sits in a spec file.
type Position struct {
	File         string
	Line, Column int
}

func (p Position) String() string {
	switch {
	case p.File == "":
		return fmt.Sprintf("line %d", p.Line)
	case p.Line == 0:
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// SpecError is one problem in a spec file: where, which field (a dotted path
// such as "grid.learning_rates[2]") and what was expected.
type SpecError struct {
	Pos   Position
	Field string
	Msg   string
}

func (e *SpecError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Field, e.Msg)
}

// SpecErrors is every problem found in a spec file, in file order.
type SpecErrors []*SpecError

func (es SpecErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// FieldError is returned by a Kind's Validate to blame one field of the
// resolved configuration (a dotted spec path such as "model.params.depth");
// spec loading turns it into a SpecError at that field's line.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Duration is a time.Duration written in a spec as a Go duration string
// ("5s", "2m30s").
type Duration time.Duration

// decoder maps a YAML node tree onto Go values strictly: unknown keys, wrong
// types and duplicate keys are errors that name the file, line, field and what
// was expected. It remembers where every field was, for later validation.
type decoder struct {
	file string
	errs SpecErrors
	pos  map[string]Position
}

func (d *decoder) at(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	d.errs = append(d.errs, &SpecError{Pos: d.at(n), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// describe says what a scalar node holds, for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!null":
		return "nothing (null)"
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return "the integer " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	}
	return fmt.Sprintf("%s %q", n.Tag, n.Value)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlName returns the key a struct field is spelled with, or "" for fields
// without a yaml tag.
func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	if tag == "" || tag == "-" {
		return ""
	}
	return strings.Split(tag, ",")[0]
}

var durationType = reflect.TypeOf(Duration(0))

// decode stores node n into v (addressable), recording positions under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "YAML aliases (*name) are not supported in specs; write the value out")
		return
	}
	if _, seen := d.pos[path]; !seen || path != "" {
		d.pos[path] = d.at(n)
	}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			d.fail(n, path, "expected a duration such as \"5s\" or \"1m30s\", got %s", describe(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur < 0 {
			d.fail(n, path, "expected a non-negative duration such as \"5s\" or \"1m30s\", got %q", n.Value)
			return
		}
		v.SetInt(int64(dur))
		return
	case t.Kind() == reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		nv := reflect.New(t.Elem())
		d.decode(n, nv.Elem(), path)
		v.Set(nv)
		return
	case t.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
		return
	case t.Kind() == reflect.Slice:
		d.decodeSlice(n, v, path)
		return
	case t.Kind() == reflect.Map:
		d.decodeMap(n, v, path)
		return
	case t.Kind() == reflect.Interface:
		val, ok := d.freeForm(n, path)
		if ok && val != nil {
			v.Set(reflect.ValueOf(val))
		}
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", kindWord(t), describe(n))
		return
	}
	switch t.Kind() {
	case reflect.String:
		if n.Tag != "!!str" {
			d.fail(n, path, "expected a string, got %s (quote it: \"%s\")", describe(n), n.Value)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int64:
		var x int64
		if n.Tag != "!!int" || n.Decode(&x) != nil {
			d.fail(n, path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(x)
	case reflect.Uint64:
		var x uint64
		if n.Tag != "!!int" || n.Decode(&x) != nil {
			d.fail(n, path, "expected a non-negative integer, got %s", describe(n))
			return
		}
		v.SetUint(x)
	case reflect.Float64:
		var x float64
		if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&x) != nil {
			d.fail(n, path, "expected a number, got %s", describe(n))
			return
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			d.fail(n, path, "expected a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(x)
	default:
		panic(fmt.Sprintf("experiment: spec decoder cannot hold %v", t))
	}
}

func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	}
	return t.String()
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping (key: value lines), got %s", describe(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			fields[name] = i
			names = append(names, name)
		}
	}
	seen := map[string]bool{}
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, val := n.Content[k], n.Content[k+1]
		if key.Kind != yaml.ScalarNode {
			d.fail(key, path, "expected a field name, got %s", describe(key))
			continue
		}
		fp := join(path, key.Value)
		i, ok := fields[key.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q (expected one of: %s)", key.Value, strings.Join(names, ", "))
			if s := closest(key.Value, names); s != "" {
				msg = fmt.Sprintf("unknown field %q; did you mean %q? (expected one of: %s)", key.Value, s, strings.Join(names, ", "))
			}
			d.errs = append(d.errs, &SpecError{Pos: d.at(key), Field: fp, Msg: msg})
			continue
		}
		if seen[key.Value] {
			d.fail(key, fp, "field given twice")
			continue
		}
		seen[key.Value] = true
		d.decode(val, v.Field(i), fp)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Tag == "!!null" {
		return
	}
	items := n.Content
	if n.Kind == yaml.ScalarNode || n.Kind == yaml.MappingNode {
		// A single value stands for a list of one: "seeds: 0" = "seeds: [0]".
		items = []*yaml.Node{n}
	} else if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping (key: value lines), got %s", describe(n))
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		panic("experiment: spec maps must have string keys")
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	for k := 0; k+1 < len(n.Content); k += 2 {
		key, val := n.Content[k], n.Content[k+1]
		if key.Kind != yaml.ScalarNode || key.Tag == "!!null" {
			d.fail(key, path, "expected a string key, got %s", describe(key))
			continue
		}
		fp := join(path, key.Value)
		if m.MapIndex(reflect.ValueOf(key.Value)).IsValid() {
			d.fail(key, fp, "key given twice")
			continue
		}
		ev := reflect.New(t.Elem()).Elem()
		d.decode(val, ev, fp)
		m.SetMapIndex(reflect.ValueOf(key.Value), ev)
	}
	v.Set(m)
}

// freeForm decodes any YAML value into plain JSON-compatible Go values:
// map[string]any, []any, string, bool, float64 (every number), nil.
func (d *decoder) freeForm(n *yaml.Node, path string) (any, bool) {
	d.pos[path] = d.at(n)
	switch n.Kind {
	case yaml.AliasNode:
		d.fail(n, path, "YAML aliases (*name) are not supported in specs; write the value out")
		return nil, false
	case yaml.MappingNode:
		m := map[string]any{}
		for k := 0; k+1 < len(n.Content); k += 2 {
			key, val := n.Content[k], n.Content[k+1]
			if key.Kind != yaml.ScalarNode || key.Tag == "!!null" || key.Tag == "!!merge" {
				d.fail(key, path, "expected a string key, got %s", describe(key))
				return nil, false
			}
			if _, dup := m[key.Value]; dup {
				d.fail(key, join(path, key.Value), "key given twice")
				return nil, false
			}
			x, ok := d.freeForm(val, join(path, key.Value))
			if !ok {
				return nil, false
			}
			m[key.Value] = x
		}
		return m, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			x, ok := d.freeForm(item, fmt.Sprintf("%s[%d]", path, i))
			if !ok {
				return nil, false
			}
			out = append(out, x)
		}
		return out, true
	}
	switch n.Tag {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		_ = n.Decode(&b)
		return b, true
	case "!!int", "!!float":
		var x float64
		if err := n.Decode(&x); err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			d.fail(n, path, "expected a finite number, got %s", n.Value)
			return nil, false
		}
		return x, true
	case "!!str":
		return n.Value, true
	}
	d.fail(n, path, "unsupported value %s", describe(n))
	return nil, false
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if dd := editDistance(s, c); dd < bestD {
			best, bestD = c, dd
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// canonicalParams normalises free-form parameters so that equal meanings
// encode equally: a JSON round trip makes every number a float64 and sorts
// keys. Empty maps become nil.
func canonicalParams(m map[string]any) (map[string]any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// formatFloat writes x in the shortest form that reads back exactly.
func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func (d Duration) String() string { return time.Duration(d).String() }

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }
