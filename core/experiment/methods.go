package experiment

import (
	"fmt"
	"sort"
	"sync"
)

// MethodTraits says which grid axes apply to a fine-tuning method.
type MethodTraits struct {
	// Adapter: the method trains a low-rank adapter, so rank, alpha and the
	// adapter targets apply.
	Adapter bool
	// Windowed: the method's window start is a free parameter, so the grid's
	// window starts and fractions apply.
	Windowed bool
	// Window is the fixed window preset of the method (pissa, milora, mid),
	// recorded in its runs for plotting; "" for none.
	Window string
}

// The built-in methods (DESIGN.md §1).
const (
	MethodLoRA   = "lora"
	MethodPiSSA  = "pissa"
	MethodMiLoRA = "milora"
	MethodMid    = "mid"
	MethodWindow = "window"
	MethodOLoRA  = "olora"
	MethodDoRA   = "dora"
	MethodFull   = "full"
	MethodHead   = "head"
)

var (
	methodsMu sync.RWMutex
	methods   = map[string]MethodTraits{
		MethodLoRA:   {Adapter: true},
		MethodPiSSA:  {Adapter: true, Window: "pissa"},
		MethodMiLoRA: {Adapter: true, Window: "milora"},
		MethodMid:    {Adapter: true, Window: "mid"},
		MethodWindow: {Adapter: true, Windowed: true},
		MethodOLoRA:  {Adapter: true},
		MethodDoRA:   {Adapter: true},
		MethodFull:   {},
		MethodHead:   {},
	}
)

// RegisterMethod makes a method (e.g. one served by a plugin) usable in specs.
// Registering a built-in name again is an error.
func RegisterMethod(name string, t MethodTraits) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("experiment: method name %q: expected letters, digits, '.', '_' or '-'", name)
	}
	methodsMu.Lock()
	defer methodsMu.Unlock()
	if _, dup := methods[name]; dup {
		return fmt.Errorf("experiment: method %q is already registered", name)
	}
	methods[name] = t
	return nil
}

// LookupMethod returns a method's traits.
func LookupMethod(name string) (MethodTraits, bool) {
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	t, ok := methods[name]
	return t, ok
}

// MethodNames lists the registered methods, sorted.
func MethodNames() []string {
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func windowedMethods() []string {
	var out []string
	for _, m := range MethodNames() {
		if t, _ := LookupMethod(m); t.Windowed {
			out = append(out, m)
		}
	}
	return out
}
