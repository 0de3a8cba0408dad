package store

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prism-lora/prism/core/experiment"
)

// Filter selects runs. Empty fields select everything.
type Filter struct {
	Spec     string
	Methods  []string
	Statuses []experiment.Status
	IDPrefix string
	// Where conditions must all hold (see ParseCondition).
	Where      []Condition
	Sort       string // a field name (see Row.Field)
	Descending bool
	Limit      int
}

// ConfigFields are the fields of a run besides its metrics, usable in
// conditions, sorting and columns.
var ConfigFields = []string{
	"id", "short_id", "spec", "kind", "model", "tasks", "method", "series", "window", "window_start",
	"window_fraction", "rank", "alpha", "lr", "epochs", "seed", "status", "error", "attempts", "host",
	"executor", "started", "finished", "seconds",
}

var isConfigField = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range ConfigFields {
		m[f] = true
	}
	return m
}()

// Value is a field's value: a number when IsNum, else text.
type Value struct {
	Num   float64
	Str   string
	IsNum bool
}

func num(x float64) Value {
	return Value{Num: x, IsNum: true, Str: strconv.FormatFloat(x, 'g', -1, 64)}
}
func str(s string) Value { return Value{Str: s} }

// Field returns a field of the run: one of ConfigFields, or a metric by name
// ("metric.NAME" forces the metric when a metric shares a field's name). ok
// is false when the run has no such field or metric (or the field does not
// apply, like window_start for lora).
func (r Row) Field(name string) (v Value, ok bool) {
	c := r.Config
	if m, found := strings.CutPrefix(name, "metric."); found {
		x, ok := r.Metrics[m]
		return num(x), ok
	}
	switch name {
	case "id":
		return str(r.ID), true
	case "short_id":
		return str(experiment.ShortID(r.ID)), true
	case "spec":
		return str(strings.Join(r.Specs, " ")), true
	case "kind":
		return str(c.Kind), true
	case "model":
		return str(c.Model.Name), true
	case "tasks":
		return str(strings.Join(c.Finetune.Tasks, ">")), true
	case "method":
		return str(c.Method), true
	case "series":
		return str(c.Series()), true
	case "window":
		if c.Window == nil {
			return str(""), false
		}
		return str(c.Window.String()), true
	case "window_start":
		if c.Window == nil || c.Window.Preset != "start" {
			return Value{}, false
		}
		return num(float64(c.Window.Start)), true
	case "window_fraction":
		if c.Window == nil || c.Window.Preset != "fraction" {
			return Value{}, false
		}
		return num(c.Window.Fraction), true
	case "rank":
		return num(float64(c.Rank)), c.Rank > 0
	case "alpha":
		return num(c.Alpha), c.Rank > 0
	case "lr":
		return num(c.LearningRate), true
	case "epochs":
		return num(float64(c.Epochs)), true
	case "seed":
		return num(float64(c.Seed)), true
	case "status":
		return str(string(r.Status)), true
	case "error":
		return str(r.Error), true
	case "attempts":
		return num(float64(r.Attempts)), true
	case "host":
		return str(r.Host), true
	case "executor":
		return str(r.Executor), true
	case "started":
		if r.Started.IsZero() {
			return str(""), false
		}
		return str(r.Started.Format("2006-01-02T15:04:05Z07:00")), true
	case "finished":
		if r.Finished.IsZero() {
			return str(""), false
		}
		return str(r.Finished.Format("2006-01-02T15:04:05Z07:00")), true
	case "seconds":
		return num(r.WallSeconds), !math.IsNaN(r.WallSeconds)
	}
	x, ok := r.Metrics[name]
	return num(x), ok
}

// Condition is FIELD OP VALUE, e.g. b_acc>=80, method=window, series~^window.
type Condition struct {
	Field, Op, Value string
	re               *regexp.Regexp
	num              float64
	isNum            bool
}

var (
	condRE  = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_.:-]*)\s*(>=|<=|!=|==|=|<|>|~)\s*(.*?)\s*$`)
	condOps = "=, !=, <, <=, >, >=, ~ (regular expression)"
)

// ParseCondition parses FIELD OP VALUE with OP one of = (or ==), !=, <, <=,
// >, >=, ~ (VALUE is a regular expression the field must contain). Numbers
// compare as numbers, anything else as text.
func ParseCondition(s string) (Condition, error) {
	m := condRE.FindStringSubmatch(s)
	if m == nil {
		return Condition{}, fmt.Errorf("condition %q: expected FIELD OP VALUE with OP one of %s (e.g. b_acc>=80)", s, condOps)
	}
	c := Condition{Field: m[1], Op: m[2], Value: m[3]}
	if strings.ContainsAny(c.Value[:min(1, len(c.Value))], "<>=!~") {
		return Condition{}, fmt.Errorf("condition %q: value %q starts with an operator; expected FIELD OP VALUE with OP one of %s", s, c.Value, condOps)
	}
	if c.Op == "==" {
		c.Op = "="
	}
	if c.Op == "~" {
		re, err := regexp.Compile(c.Value)
		if err != nil {
			return Condition{}, fmt.Errorf("condition %q: %v", s, err)
		}
		c.re = re
	} else if x, err := strconv.ParseFloat(c.Value, 64); err == nil {
		c.num, c.isNum = x, true
	}
	return c, nil
}

// Match reports whether the row satisfies the condition. A row without the
// field matches only "!=".
func (c Condition) Match(r Row) bool {
	v, ok := r.Field(c.Field)
	if !ok {
		return c.Op == "!="
	}
	if c.Op == "~" {
		return c.re != nil && c.re.MatchString(v.Str)
	}
	var cmp int
	if v.IsNum && c.isNum {
		switch {
		case math.IsNaN(v.Num):
			return c.Op == "!="
		case v.Num < c.num:
			cmp = -1
		case v.Num > c.num:
			cmp = 1
		}
	} else {
		cmp = strings.Compare(v.Str, c.Value)
	}
	switch c.Op {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}

// CheckFields reports field names that are neither configuration fields nor
// a metric of any of rows.
func CheckFields(rows []Row, names ...string) error {
	metrics := map[string]bool{}
	for _, r := range rows {
		for m := range r.Metrics {
			metrics[m] = true
		}
	}
	for _, n := range names {
		if isConfigField[n] || metrics[strings.TrimPrefix(n, "metric.")] {
			continue
		}
		if len(rows) == 0 {
			continue // nothing to check against
		}
		known := sortedSet(metrics)
		return fmt.Errorf("unknown field %q (fields: %s; metrics: %s)", n, strings.Join(ConfigFields, ", "), strings.Join(known, ", "))
	}
	return nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// MetricNames returns the metric names present in rows: the standard ones
// first (in their documented order), then the others sorted.
func MetricNames(rows []Row) []string {
	present := map[string]bool{}
	for _, r := range rows {
		for m := range r.Metrics {
			present[m] = true
		}
	}
	var out []string
	for _, m := range []string{experiment.MetricTaskBAcc, experiment.MetricTaskAAccBefore, experiment.MetricTaskAAccAfter,
		experiment.MetricForgetting, experiment.MetricKL, experiment.MetricTrainableParams, experiment.MetricWallSeconds} {
		if present[m] {
			out = append(out, m)
			delete(present, m)
		}
	}
	return append(out, sortedSet(present)[:len(present)]...)
}

// sortRows orders rows by a field; rows without it go last.
func sortRows(rows []Row, field string, desc bool) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, aok := rows[i].Field(field)
		b, bok := rows[j].Field(field)
		if aok && a.IsNum && math.IsNaN(a.Num) {
			aok = false
		}
		if bok && b.IsNum && math.IsNaN(b.Num) {
			bok = false
		}
		if !aok || !bok {
			return aok && !bok
		}
		var less bool
		if a.IsNum && b.IsNum {
			if a.Num == b.Num {
				return false
			}
			less = a.Num < b.Num
		} else {
			if a.Str == b.Str {
				return false
			}
			less = a.Str < b.Str
		}
		if desc {
			return !less
		}
		return less
	})
}
