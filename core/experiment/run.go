package experiment

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// RunFunc executes one run. It reports progress through p (it may never call
// it), honours ctx (return ctx.Err() promptly once it is done: a cancelled run
// is not recorded and is run again on resume), and returns the run's result or
// an error, which is recorded as the run's failure reason. A run function
// must not depend on anything but its configuration for its numbers: the same
// configuration gives the same result, which is what makes resumption and
// content addressing sound.
type RunFunc func(ctx context.Context, cfg RunConfig, p Progress) (Result, error)

// Progress receives a running run's progress.
type Progress interface {
	// Report says done of total units (steps, batches or epochs) are finished,
	// with a short status such as "epoch 2/5 loss 0.31 acc 91.2%".
	Report(done, total int, status string)
}

// NopProgress discards progress.
type NopProgress struct{}

// Report does nothing.
func (NopProgress) Report(int, int, string) {}

// ProgressFunc adapts a function to Progress.
type ProgressFunc func(done, total int, status string)

// Report calls f.
func (f ProgressFunc) Report(done, total int, status string) { f(done, total, status) }

// Result is what a run produces.
type Result struct {
	// Metrics are the final scalar metrics, e.g. MetricTaskBAcc.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Curves are per-epoch (or finer) series by name, e.g. "train_loss".
	Curves map[string][]CurvePoint `json:"curves,omitempty"`
	// Summaries are analysis results as generic (scope, key) → value rows,
	// e.g. scope "blocks.0.attn.qkv", key "diag_norm".
	Summaries []Summary `json:"summaries,omitempty"`
}

// CurvePoint is one point of a training curve.
type CurvePoint struct {
	Epoch float64 `json:"epoch"`
	Value float64 `json:"value"`
}

// Summary is one analysis value: a number and/or a short text.
type Summary struct {
	Scope string  `json:"scope"`
	Key   string  `json:"key"`
	Value float64 `json:"value"`
	Text  string  `json:"text,omitempty"`
}

// Standard metric names. Run kinds report these so that figures, tables and
// `prism results` work for every kind; they may add any others.
const (
	MetricTaskBAcc        = "b_acc"            // new-task test accuracy, % (0–100)
	MetricTaskAAccBefore  = "a_acc_before"     // old-task test accuracy of the base model, %
	MetricTaskAAccAfter   = "a_acc_after"      // old-task test accuracy after fine-tuning, %
	MetricForgetting      = "forgetting"       // a_acc_before − a_acc_after, points
	MetricKL              = "a_kl"             // mean KL(base ‖ fine-tuned) on old-task inputs, nats
	MetricTrainableParams = "trainable_params" // number of trained parameters
	MetricWallSeconds     = "wall_s"           // wall time of the run, s
)

// Standard metric names of language-model runs (kind finetune-text): bits
// per character on held-out text, where lower is better, and their rise on
// the old corpus as its forgetting.
const (
	MetricTaskBBPC       = "b_bpc"          // new-task test bits per character after fine-tuning
	MetricTaskBBPCBefore = "b_bpc_before"   // new-task test bits per character of the base model
	MetricTaskABPCBefore = "a_bpc_before"   // old-task test bits per character of the base model
	MetricTaskABPCAfter  = "a_bpc_after"    // old-task test bits per character after fine-tuning
	MetricBPCForgetting  = "bpc_forgetting" // a_bpc_after − a_bpc_before, bits per character
)

// Check reports a result's problems: non-finite curve points or summary
// values are kept (NaN is stored as NULL), but names must be non-empty.
func (r Result) Check() error {
	for name := range r.Metrics {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("experiment: result has a metric with an empty name")
		}
	}
	for name := range r.Curves {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("experiment: result has a curve with an empty name")
		}
	}
	seen := map[[2]string]bool{}
	for _, s := range r.Summaries {
		if s.Key == "" {
			return fmt.Errorf("experiment: result has a summary with an empty key (scope %q)", s.Scope)
		}
		k := [2]string{s.Scope, s.Key}
		if seen[k] {
			return fmt.Errorf("experiment: result has summary (%q, %q) twice", s.Scope, s.Key)
		}
		seen[k] = true
	}
	return nil
}

// Kind is a registered kind of run: the function that executes a
// configuration and how to check configurations before a sweep starts.
type Kind struct {
	Name string
	Run  RunFunc
	// Validate, if set, checks a configuration before any run starts (return
	// a *FieldError to point at a spec field).
	Validate func(RunConfig) error
	// Threads is how many cores one run keeps busy (0 means 1); the local
	// runner's default worker count is the machine's cores / Threads.
	Threads int
	// Doc is a one-line description for `prism sweep --help`.
	Doc string
}

// Registry holds run kinds by name. The zero value is empty and usable.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]Kind
}

// Kinds is the process-wide registry that `prism sweep` uses.
var Kinds = &Registry{}

// Register adds a kind; names are unique.
func (r *Registry) Register(k Kind) error {
	if !nameRE.MatchString(k.Name) {
		return fmt.Errorf("experiment: run kind name %q: expected letters, digits, '.', '_' or '-'", k.Name)
	}
	if k.Run == nil {
		return fmt.Errorf("experiment: run kind %q has no Run function", k.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds = map[string]Kind{}
	}
	if _, dup := r.kinds[k.Name]; dup {
		return fmt.Errorf("experiment: run kind %q is already registered", k.Name)
	}
	r.kinds[k.Name] = k
	return nil
}

// Lookup returns the kind called name, or an error listing the known kinds.
func (r *Registry) Lookup(name string) (Kind, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if k, ok := r.kinds[name]; ok {
		return k, nil
	}
	return Kind{}, fmt.Errorf("unknown run kind %q (registered: %s)", name, strings.Join(r.namesLocked(), ", "))
}

// Names lists the registered kinds, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Registry) namesLocked() []string {
	out := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}
