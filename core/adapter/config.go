package adapter

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/hyperparam"
)

// Methods (Config.Method).
const (
	MethodLoRA   = "lora"   // A Kaiming-uniform, B = 0, Wres = W
	MethodPiSSA  = "pissa"  // window s = 0
	MethodMiLoRA = "milora" // window s = k−r
	MethodMid    = "mid"    // window s = ⌊(k−r)/2⌋
	MethodWindow = "window" // window from Config.Window (start or fraction)
	MethodOLoRA  = "olora"  // W = Q·R, B = Q[:, :r], A = R[:r, :]
	MethodDoRA   = "dora"   // LoRA init + learned magnitude over the normalised direction
	MethodFull   = "full"   // the layer's weight and bias are trained
	MethodHead   = "head"   // the layer is frozen (only a new head learns)
)

// Methods lists every method, in the order of DESIGN.md §1.
var Methods = []string{MethodLoRA, MethodPiSSA, MethodMiLoRA, MethodMid, MethodWindow,
	MethodOLoRA, MethodDoRA, MethodFull, MethodHead}

// Config says how to adapt one layer. Rank, Alpha, RSLoRA, SVD, Randomized,
// NIter, Oversample and Seed apply to the adapter methods (everything but full and
// head); Window to MethodWindow.
type Config struct {
	Method     string             // see Methods
	Rank       int                // r ≥ 1 (adapter methods)
	Alpha      float64            // α > 0; 0 means α = r
	RSLoRA     bool               // scale = α/√r instead of α/r
	Window     lowrank.WindowSpec // where the window starts (MethodWindow)
	SVD        string             // full (default) | randomized
	Randomized string             // randomized SVD algorithm: krylov (default) | subspace
	NIter      int                // randomized SVD: Krylov steps or power iterations (0: lowrank's default)
	Oversample int                // randomized SVD: extra columns (0: lowrank's default)
	Seed       uint64             // seeds LoRA's A and the randomized SVD (mixed with the layer name)

	// External, when set, initialises the adapter instead of core/lowrank: a
	// core/method.Method such as a plugin method (plugins/host) or any
	// in-process implementation. Method must then be its Metadata().Name (not
	// a built-in name) and Hyper holds its hyperparameter values (the method
	// checks them and fills in defaults). The layer is a LoRA layer
	// (y = x·Baseᵀ + scale·(x·Aᵀ)·Bᵀ + b) initialised from the method's
	// A (r×n), B (m×r) and Base (m×n); Attach checks W = Base + scale·B·A
	// unless the method declares that it changes the function.
	External method.Method
	Hyper    map[string]method.Value
}

// IsAdapter reports whether the method trains low-rank factors A and B.
func (c Config) IsAdapter() bool {
	switch c.Method {
	case MethodFull, MethodHead:
		return false
	}
	return true
}

// IsExternal reports whether an External method initialises the adapter.
func (c Config) IsExternal() bool { return c.External != nil }

// IsWindow reports whether the method initialises from a window of the
// singular components (pissa, milora, mid, window).
func (c Config) IsWindow() bool {
	switch c.Method {
	case MethodPiSSA, MethodMiLoRA, MethodMid, MethodWindow:
		return true
	}
	return false
}

// Scale is the adapter scale α/r, or α/√r with rsLoRA (α = r when Alpha is 0).
func (c Config) Scale() float64 { return c.LowRank("").Scale() }

// WindowSpec is the window the method implies (its preset, or Window).
func (c Config) WindowSpec() lowrank.WindowSpec {
	switch c.Method {
	case MethodPiSSA, MethodMiLoRA, MethodMid:
		return lowrank.WindowSpec{Preset: c.Method}
	}
	return c.Window
}

// LowRank returns the core/lowrank initialisation config of an adapter method
// for the named layer (DoRA initialises as LoRA). The seed is mixed with the
// layer name so that layers of equal shape draw different LoRA factors.
func (c Config) LowRank(layer string) lowrank.Config {
	method := c.Method
	if method == MethodDoRA {
		method = lowrank.MethodLoRA
	}
	return lowrank.Config{
		Method: method, Rank: c.Rank, Alpha: c.Alpha, RSLoRA: c.RSLoRA, Window: c.WindowSpec(),
		SVD: c.SVD, Randomized: c.Randomized, NIter: c.NIter, Oversample: c.Oversample, Seed: layerSeed(c.Seed, layer),
	}
}

// layerSeed mixes seed with the FNV-1a hash of the layer name.
func layerSeed(seed uint64, layer string) uint64 {
	if layer == "" {
		return seed
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(layer); i++ {
		h ^= uint64(layer[i])
		h *= 1099511628211
	}
	return seed ^ h
}

// Validate checks the parts of c that do not depend on a layer's shape
// (the window is resolved per layer by Attach).
func (c Config) Validate() error {
	if c.External != nil {
		name := c.External.Metadata().Name
		switch {
		case slices.Contains(Methods, c.Method):
			return fmt.Errorf("adapter: method %q is built in; an external method (here %q) needs its own name", c.Method, name)
		case c.Method != name:
			return fmt.Errorf("adapter: method %q, but the external method calls itself %q", c.Method, name)
		}
	} else if !slices.Contains(Methods, c.Method) {
		return fmt.Errorf("adapter: unknown method %q (expected one of %s)", c.Method, strings.Join(Methods, ", "))
	}
	if !c.IsAdapter() {
		return nil
	}
	if c.Rank < 1 {
		return fmt.Errorf("adapter: method %s: rank %d, want ≥ 1", c.Method, c.Rank)
	}
	if !(c.Alpha >= 0) || math.IsInf(c.Alpha, 0) {
		return fmt.Errorf("adapter: method %s: alpha %v, want > 0 (0 means alpha = rank)", c.Method, c.Alpha)
	}
	switch c.SVD {
	case "", lowrank.SVDFull, lowrank.SVDRandomized:
	default:
		return fmt.Errorf("adapter: method %s: unknown SVD strategy %q (expected full or randomized)", c.Method, c.SVD)
	}
	if c.Method == MethodWindow {
		switch c.Window.Preset {
		case "", lowrank.WindowStart, lowrank.WindowFraction, lowrank.WindowPiSSA, lowrank.WindowMiLoRA, lowrank.WindowMid:
		default:
			return fmt.Errorf("adapter: method window: unknown window preset %q", c.Window.Preset)
		}
	}
	return nil
}

// String is a short label, e.g. "mid r=8 α=16", "window start=12 r=8 α=16", "full".
func (c Config) String() string {
	if !c.IsAdapter() {
		return c.Method
	}
	s := c.Method
	if c.Method == MethodWindow {
		s += " " + c.Window.String()
	}
	alpha := c.Alpha
	if alpha == 0 {
		alpha = float64(c.Rank)
	}
	s += fmt.Sprintf(" r=%d α=%g", c.Rank, alpha)
	if c.RSLoRA {
		s += " rslora"
	}
	if c.External != nil && len(c.Hyper) > 0 {
		types := map[string]method.HyperType{}
		for _, p := range c.External.Metadata().Hyperparameters {
			types[p.Name] = p.Type
		}
		names := make([]string, 0, len(c.Hyper))
		for n := range c.Hyper {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			s += " " + n + "=" + hyperparam.Format(types[n], c.Hyper[n])
		}
	}
	return s
}
