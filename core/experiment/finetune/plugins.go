package finetune

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/hyperparam"
	"github.com/prism-lora/prism/core/train"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/datasets/dense"
	"github.com/prism-lora/prism/plugins/host"
)

// exampleShape is a catalog dataset's example shape (false for other names,
// e.g. dataset plugins, whose shape is only known once started).
func exampleShape(task string) ([]int, bool) {
	e, err := catalog.Lookup(task)
	if err != nil {
		return nil, false
	}
	return e.Spec().ExampleShape, true
}

// sharedOpen returns the dataset loader of a run: catalog datasets, else
// dataset plugins (read whole into memory), each loaded once per sweep and
// shared by its runs through the sweep's experiment.Cache.
func sharedOpen(runCtx context.Context, h *host.Host) train.OpenDataset {
	cache := experiment.SharedCache(runCtx)
	return func(ctx context.Context, name string) (datasets.InMemory, error) {
		v, err := cache.Do(ctx, "finetune/dataset/"+name, func(ctx context.Context) (any, error) {
			return openDataset(ctx, h, name)
		})
		if err != nil {
			return nil, err
		}
		return v.(datasets.InMemory), nil
	}
}

// openDataset opens a catalog dataset, or collects every split of the
// dataset plugin of that name into memory.
func openDataset(ctx context.Context, h *host.Host, name string) (datasets.InMemory, error) {
	if slices.Contains(catalog.Names(), name) {
		d, err := catalog.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		m, ok := d.(datasets.InMemory)
		if !ok {
			return nil, fmt.Errorf("dataset %s: loader does not keep the data in memory", name)
		}
		return m, nil
	}
	d, err := h.Dataset(ctx, name)
	if err != nil {
		return nil, err
	}
	spec := d.Spec()
	var splits []dense.Split
	for _, sp := range spec.Splits {
		a, err := dense.Collect(ctx, d, sp.Name)
		if err != nil {
			return nil, err
		}
		splits = append(splits, dense.Split{Name: sp.Name, Inputs: a.Inputs, Tokens: a.Tokens, Labels: a.Labels})
	}
	return dense.New(spec, splits...)
}

// pluginMethod starts the run's method plugin and builds the external
// initialisation: its hyperparameters from grid.method_params, and an
// identity (name, version, SHA-256 of the binary) for the training
// checkpoint's fingerprint.
func pluginMethod(ctx context.Context, h *host.Host, cfg experiment.RunConfig) (*train.ExternalMethod, error) {
	mp, err := h.Method(ctx, cfg.Method)
	if err != nil {
		return nil, err
	}
	md := mp.Metadata()
	hyper, err := hyperValues(cfg.Method, md, cfg.MethodParams)
	if err != nil {
		return nil, err
	}
	return &train.ExternalMethod{Method: mp, Hyper: hyper,
		Identity: fmt.Sprintf("%s %s sha256:%s", md.Name, md.Version, mp.Installed().SHA256)}, nil
}

// hyperValues converts grid.method_params.NAME to typed values and checks
// them against the method's metadata (names, types, ranges, choices).
func hyperValues(name string, md method.Metadata, given map[string]any) (map[string]method.Value, error) {
	field := "grid.method_params." + name
	p, err := normalise(field, given)
	if err != nil {
		return nil, err
	}
	byName := map[string]method.HyperParam{}
	var names []string
	for _, hp := range md.Hyperparameters {
		byName[hp.Name] = hp
		names = append(names, hp.Name)
	}
	keys := make([]string, 0, len(p.m))
	for k := range p.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]method.Value{}
	for _, k := range keys {
		hp, ok := byName[k]
		if !ok {
			known := "none"
			if len(names) > 0 {
				known = strings.Join(names, ", ")
			}
			return nil, &experiment.FieldError{Field: field + "." + k, Msg: fmt.Sprintf("method %s has no hyperparameter %q (it has: %s)", name, k, known)}
		}
		v := p.m[k]
		bad := &experiment.FieldError{Field: field + "." + k, Msg: fmt.Sprintf("expected a %s, got %v", hp.Type, v)}
		switch hp.Type {
		case method.Int:
			x, isNum := number(v)
			if !isNum || x != float64(int64(x)) {
				return nil, bad
			}
			out[k] = method.Value{Int: int64(x)}
		case method.Float:
			x, isNum := number(v)
			if !isNum {
				return nil, bad
			}
			out[k] = method.Value{Float: x}
		case method.Bool:
			b, isBool := v.(bool)
			if !isBool {
				return nil, bad
			}
			out[k] = method.Value{Bool: b}
		case method.String:
			s, isString := v.(string)
			if !isString {
				return nil, bad
			}
			out[k] = method.Value{String: s}
		default:
			return nil, bad
		}
	}
	if _, err := hyperparam.Resolve(md.Hyperparameters, out); err != nil {
		return nil, &experiment.FieldError{Field: field, Msg: err.Error()}
	}
	return out, nil
}

// validateTimeout bounds starting a plugin to read its metadata while a
// spec is validated.
const validateTimeout = 15 * time.Second

var (
	metadataMu    sync.Mutex
	metadataCache = map[string]*method.Metadata{} // nil entry: could not be read
)

// validatePluginMethod checks grid.method_params against the plugin's
// metadata when the plugin starts and answers; a plugin that does not is not
// a validation error (its runs fail with the plugin's fault instead).
func validatePluginMethod(cfg experiment.RunConfig) error {
	metadataMu.Lock()
	md, seen := metadataCache[cfg.Method]
	if !seen {
		md = readMetadata(cfg.Method)
		metadataCache[cfg.Method] = md
	}
	metadataMu.Unlock()
	if md == nil {
		return nil
	}
	_, err := hyperValues(cfg.Method, *md, cfg.MethodParams)
	return err
}

func readMetadata(name string) *method.Metadata {
	h, err := host.New(host.Options{Dirs: Settings.PluginDirs, StartTimeout: validateTimeout, CallTimeout: validateTimeout})
	if err != nil {
		return nil
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
	defer cancel()
	mp, err := h.Method(ctx, name)
	if err != nil {
		return nil
	}
	md := mp.Metadata()
	return &md
}
