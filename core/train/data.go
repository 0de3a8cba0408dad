package train

import (
	"context"
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/datasets/dense"
)

// OpenDataset loads a dataset by catalog name; it must keep its data in
// memory. Tests and notebooks may pass their own (see Options.Open).
type OpenDataset func(ctx context.Context, name string) (datasets.InMemory, error)

// openCatalog opens a dataset of the default catalog store.
func openCatalog(ctx context.Context, name string) (datasets.InMemory, error) {
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

// subsetSeed fixes which examples a subset takes: the first N of one fixed
// permutation of the split, independent of every run seed, so runs with the
// same subset size see the same examples.
const subsetSeed = 0x5eb5e7

// examples is a split held in memory, or a subset of it.
type examples struct {
	name        string // "mnist/train", for messages
	inputs      []float32
	labels      []int32
	index       []int32 // positions of the split used, in order (nil: all)
	shape       []int   // one example
	exampleSize int
	classes     int
	checksum    string
}

// loadSplit takes split of d, restricted to the first limit examples of the
// fixed subset permutation when 0 < limit < size. The example shape must be
// want (when given).
func loadSplit(d datasets.InMemory, split string, limit int, want []int) (examples, error) {
	spec := d.Spec()
	if spec.Task != datasets.Classification || spec.DType != datasets.Float32 {
		return examples{}, fmt.Errorf("dataset %s: task %s with %s inputs; training needs float32 classification data", spec.Name, spec.Task, spec.DType)
	}
	if want != nil && !slices.Equal(spec.ExampleShape, want) {
		return examples{}, fmt.Errorf("dataset %s: examples have shape %v, the network takes %v", spec.Name, spec.ExampleShape, want)
	}
	a, err := d.Arrays(split)
	if err != nil {
		return examples{}, err
	}
	e := examples{
		name: spec.Name + "/" + split, inputs: a.Inputs, labels: a.Labels,
		shape: spec.ExampleShape, exampleSize: spec.ExampleSize(), classes: spec.NumClasses(), checksum: spec.Checksum,
	}
	if limit < 0 {
		return examples{}, fmt.Errorf("dataset %s: subset size %d, want ≥ 0 (0 = all)", e.name, limit)
	}
	if limit > 0 && limit < a.Size {
		e.index = dense.Permutation(a.Size, subsetSeed)[:limit]
	}
	return e, nil
}

// Len is the number of examples.
func (e examples) Len() int {
	if e.index != nil {
		return len(e.index)
	}
	return len(e.labels)
}

// position maps example i of e to its position in the split.
func (e examples) position(i int) int {
	if e.index != nil {
		return int(e.index[i])
	}
	return i
}

// label returns example i's label.
func (e examples) label(i int) int32 { return e.labels[e.position(i)] }

// batch fills a [len(order), shape…] input tensor and a [len(order)] label
// tensor with the examples order[0…] of e; entries past len(order) up to
// size are zero padding (evaluation batches keep one shape).
func (e examples) batch(order []int, size int) (*tensors.Tensor, *tensors.Tensor) {
	xs := make([]float32, size*e.exampleSize)
	ys := make([]int32, size)
	for j, i := range order {
		p := e.position(i)
		copy(xs[j*e.exampleSize:(j+1)*e.exampleSize], e.inputs[p*e.exampleSize:(p+1)*e.exampleSize])
		ys[j] = e.labels[p]
	}
	dims := append([]int{size}, e.shape...)
	return tensors.FromFlatDataAndDimensions(xs, dims...), tensors.FromFlatDataAndDimensions(ys, size)
}
