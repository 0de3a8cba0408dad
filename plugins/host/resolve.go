package host

import (
	"context"
	"slices"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/plugins/protocol"
)

// ResolveMethod returns the method a user names: a built-in one (lora,
// pissa, milora, mid, window, olora) or else the method plugin of that name.
// This is how `--method NAME` and experiment specs find methods.
func (h *Host) ResolveMethod(ctx context.Context, name string) (method.Method, error) {
	if builtin.IsBuiltin(name) {
		return builtin.New(name)
	}
	return h.Method(ctx, name)
}

// ResolveDataset returns the dataset a user names: one of the catalog
// (datasets/catalog) or else the dataset plugin of that name.
func (h *Host) ResolveDataset(ctx context.Context, name string) (datasets.Dataset, error) {
	if slices.Contains(catalog.Names(), name) {
		return catalog.Open(ctx, name)
	}
	return h.Dataset(ctx, name)
}

// MethodNames lists the built-in methods, then the method plugins installed.
func (h *Host) MethodNames() ([]string, error) {
	names := builtin.Names()
	all, err := h.Installed()
	if err != nil {
		return nil, err
	}
	for _, in := range all {
		if in.Kind == protocol.KindMethod && !slices.Contains(names, in.Name) {
			names = append(names, in.Name)
		}
	}
	return names, nil
}
