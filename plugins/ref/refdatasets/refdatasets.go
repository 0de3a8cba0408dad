// Package refdatasets holds the reference dataset plugin's dataset:
// SklearnDigits serves scikit-learn's digits (the built-in "digits" of
// datasets/catalog: same files, same fixed split, same pixels) under the
// name "sklearn-digits", so that a plugin's batches can be compared with
// the in-process loader's, example for example. Its plugin's main is one
// line (plugins/ref/prism-dataset-sklearn-digits).
package refdatasets

import (
	"context"
	"sync"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog"
)

// Name is the plugin dataset's name.
const Name = "sklearn-digits"

// SklearnDigits is the digits dataset, opened from the data store on first
// use (so a missing file is an error of Batches, with the command that
// installs it, not a crash at start).
type SklearnDigits struct {
	once sync.Once
	d    datasets.Dataset
	err  error
}

// Spec is the catalog's digits spec, renamed.
func (s *SklearnDigits) Spec() datasets.Spec {
	e, err := catalog.Lookup("digits")
	if err != nil {
		panic(err) // the catalog always has digits
	}
	spec := e.Spec()
	spec.Name = Name
	spec.Description = "reference dataset plugin: " + spec.Description
	return spec
}

// Batches opens the data (once) and delegates to the loader.
func (s *SklearnDigits) Batches(ctx context.Context, o datasets.BatchOptions) (datasets.Batches, error) {
	s.once.Do(func() { s.d, s.err = catalog.Open(context.Background(), "digits") })
	if s.err != nil {
		return nil, s.err
	}
	return s.d.Batches(ctx, o)
}
