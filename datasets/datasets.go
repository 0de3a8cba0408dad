// Package datasets defines what prism trains and evaluates on: the Dataset
// interface and its plain types (Spec, Batch, BatchOptions, Arrays). It holds
// no implementation and imports nothing from core; loaders live in
// sub-packages (dense for in-memory data and its batching, idx for the idx
// file format, mnist and digits for the image sets, text for the text
// corpora, rdata for R data files, catalog for sources, checksums and
// fetching), and plugins serve the same interface over gRPC.
//
// # Examples, inputs and labels
//
// A split is a sequence of N examples. Example i has an input of
// Spec.ExampleShape (row-major) and a label of Spec.LabelShape:
//
//   - images (DType Float32): ExampleShape [H, W, C], channels last, pixel
//     values scaled to float32 in [0, 1] (see each loader for the exact map,
//     e.g. MNIST x = byte/255);
//   - text (DType Int32): ExampleShape [T], token ids in [0, VocabSize);
//     positions past a short text hold PadToken.
//
// Classification labels are one class index in [0, len(Classes)) per example
// (LabelShape []); language-modelling labels are the next token of every
// position (LabelShape [T], label[t] = input[t+1] of the underlying stream).
//
// # Batches
//
// Batches are drawn from one split with BatchOptions: an optional shuffle
// that depends only on (Seed, split size), then sharding (shard i of n takes
// a contiguous 1/n of that order), then cutting the shard into batches of
// BatchSize, the last one shorter unless DropLast. Two iterators with equal
// options visit identical examples in identical order, on any machine and in
// any process (plugins included), so runs are reproducible and shards are
// disjoint and cover the split.
package datasets

import (
	"context"
	"errors"
	"fmt"
)

// Task says what the labels mean.
type Task string

const (
	// Classification: one class index per example, in [0, len(Spec.Classes)).
	Classification Task = "classification"
	// LanguageModelling: one next-token label per input position.
	LanguageModelling Task = "language-modelling"
)

// DType is the element type of the inputs.
type DType string

const (
	// Float32 inputs fill Batch.Inputs (images).
	Float32 DType = "float32"
	// Int32 inputs (token ids) fill Batch.Tokens (text).
	Int32 DType = "int32"
)

// Split names used by the built-in datasets. Any other name is allowed.
const (
	Train      = "train"
	Validation = "validation"
	Test       = "test"
)

// Split is one named part of a dataset and its number of examples.
type Split struct {
	Name string
	Size int
}

// Spec describes a dataset completely enough to build a model for it and to
// check what a loader or plugin delivers.
type Spec struct {
	// Name is the catalog name, e.g. "mnist", "fashion-mnist", "digits".
	Name string
	// Description is one human sentence: what the examples are and where
	// they come from.
	Description string
	// Task says what the labels mean.
	Task Task
	// Splits lists the splits and their sizes, in a fixed order
	// (train first by convention).
	Splits []Split
	// ExampleShape is the shape of one input, row-major: [H, W, C] for
	// images, [T] for token sequences.
	ExampleShape []int
	// DType is the element type of the inputs.
	DType DType
	// LabelShape is the shape of one label: [] for classification, [T] for
	// language modelling.
	LabelShape []int
	// Classes names the classes; label k means Classes[k]. Empty for
	// language modelling.
	Classes []string
	// VocabSize bounds token ids: 0 ≤ id < VocabSize (Int32 inputs only).
	VocabSize int
	// PadToken fills the positions past the end of a short text (Int32
	// inputs only); -1 when every example fills its T positions.
	PadToken int32
	// PixelScale documents how stored values map to the float inputs, e.g.
	// "x = byte/255 (0 → 0, 255 → 1)". Empty for tokens.
	PixelScale string
	// Checksum identifies the exact examples: a hex SHA-256 over the
	// source files' pinned checksums and the loader's version, so that two
	// datasets with equal Checksums yield identical examples (for
	// content-addressed caches). Empty when unknown.
	Checksum string
}

// NumClasses is len(Classes).
func (s Spec) NumClasses() int { return len(s.Classes) }

// ExampleSize is the number of input values in one example: the product of
// ExampleShape (1 for an empty shape).
func (s Spec) ExampleSize() int { return product(s.ExampleShape) }

// LabelSize is the number of labels per example: the product of LabelShape.
func (s Spec) LabelSize() int { return product(s.LabelShape) }

// SplitSize is the number of examples in the named split; ok is false when
// the dataset has no such split.
func (s Spec) SplitSize(name string) (size int, ok bool) {
	for _, sp := range s.Splits {
		if sp.Name == name {
			return sp.Size, true
		}
	}
	return 0, false
}

// SplitNames lists the split names in order.
func (s Spec) SplitNames() []string {
	names := make([]string, len(s.Splits))
	for i, sp := range s.Splits {
		names[i] = sp.Name
	}
	return names
}

func product(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Validate checks that the Spec is self-consistent: a name, at least one
// split with distinct names and sizes ≥ 0, positive dimensions, a known
// DType and Task, classes for classification, and a vocabulary for tokens.
// The error names the dataset and the field.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("dataset spec %q: %s", s.Name, fmt.Sprintf(format, args...))
	}
	if s.Name == "" {
		return errors.New("dataset spec: empty Name")
	}
	if len(s.Splits) == 0 {
		return bad("no splits")
	}
	seen := map[string]bool{}
	for _, sp := range s.Splits {
		if sp.Name == "" {
			return bad("a split has an empty name")
		}
		if seen[sp.Name] {
			return bad("split %q listed twice", sp.Name)
		}
		seen[sp.Name] = true
		if sp.Size < 0 {
			return bad("split %q has size %d, want ≥ 0", sp.Name, sp.Size)
		}
	}
	if len(s.ExampleShape) == 0 {
		return bad("empty ExampleShape")
	}
	for i, d := range s.ExampleShape {
		if d <= 0 {
			return bad("ExampleShape[%d] = %d, want > 0", i, d)
		}
	}
	for i, d := range s.LabelShape {
		if d <= 0 {
			return bad("LabelShape[%d] = %d, want > 0", i, d)
		}
	}
	switch s.DType {
	case Float32:
	case Int32:
		if s.VocabSize <= 0 {
			return bad("DType int32 needs VocabSize > 0, got %d", s.VocabSize)
		}
		if s.PadToken < -1 || int(s.PadToken) >= s.VocabSize {
			return bad("PadToken %d outside [-1, %d)", s.PadToken, s.VocabSize)
		}
	default:
		return bad("unknown DType %q (want %q or %q)", s.DType, Float32, Int32)
	}
	switch s.Task {
	case Classification:
		if len(s.Classes) < 2 {
			return bad("classification needs ≥ 2 classes, got %d", len(s.Classes))
		}
		if len(s.LabelShape) != 0 {
			return bad("classification labels are scalars, got LabelShape %v", s.LabelShape)
		}
	case LanguageModelling:
		if s.DType != Int32 {
			return bad("language modelling needs int32 token inputs, got %q", s.DType)
		}
	default:
		return bad("unknown Task %q (want %q or %q)", s.Task, Classification, LanguageModelling)
	}
	return nil
}

// BatchOptions choose which examples an iterator yields and in what order.
// The zero value of every field but Split and BatchSize is a sensible
// default: no shuffle, one shard, keep the last short batch.
type BatchOptions struct {
	// Split to draw from, e.g. "train".
	Split string
	// BatchSize is the number of examples per batch (> 0).
	BatchSize int
	// Shuffle visits the split in a pseudo-random order that depends only
	// on Seed and the split's size (use a different Seed per epoch, e.g.
	// base+epoch). Without Shuffle examples come in stored order.
	Shuffle bool
	// Seed drives the shuffle.
	Seed uint64
	// Shard (0-based) of NumShards: shard i takes the examples at positions
	// [⌊i·N/n⌋, ⌊(i+1)·N/n⌋) of the (shuffled) order, so shards are disjoint,
	// cover the split, and differ in size by at most one. NumShards 0 means 1.
	Shard, NumShards int
	// DropLast drops the final batch of the shard when it is shorter than
	// BatchSize, so every batch has exactly BatchSize examples.
	DropLast bool
}

// Check validates the options against a Spec: the split exists, BatchSize
// > 0, 0 ≤ Shard < NumShards. The error names the dataset and the field.
func (o BatchOptions) Check(s Spec) error {
	if _, ok := s.SplitSize(o.Split); !ok {
		return fmt.Errorf("dataset %q: no split %q (have %v)", s.Name, o.Split, s.SplitNames())
	}
	if o.BatchSize <= 0 {
		return fmt.Errorf("dataset %q: BatchSize %d, want > 0", s.Name, o.BatchSize)
	}
	n := o.NumShards
	if n == 0 {
		n = 1
	}
	if n < 0 || o.Shard < 0 || o.Shard >= n {
		return fmt.Errorf("dataset %q: shard %d of %d, want 0 ≤ shard < shards", s.Name, o.Shard, o.NumShards)
	}
	return nil
}

// Batch is a run of consecutive examples from an iterator. Its slices are
// destinations: an iterator's Next reuses their capacity (no allocation once
// they are large enough) and the caller owns them between calls.
type Batch struct {
	// Size is the number of examples: BatchSize, or fewer for the final
	// batch of a shard when DropLast is false.
	Size int
	// Inputs holds Size·ExampleSize float32 values, example after example
	// (DType Float32); empty for token datasets.
	Inputs []float32
	// Tokens holds Size·ExampleSize token ids (DType Int32); empty for
	// float datasets.
	Tokens []int32
	// Labels holds Size·LabelSize labels, example after example.
	Labels []int32
	// Indices holds the position of each example in its split (so a trainer
	// holding the whole split on a device can gather instead of copy).
	Indices []int32
}

// Batches iterates over the batches of one split. It is not safe for
// concurrent use; open one iterator per goroutine or shard.
type Batches interface {
	// Next fills dst with the next batch, reusing dst's slices, and returns
	// io.EOF after the last batch (or the context's error once it is done).
	Next(dst *Batch) error
	// NumBatches is how many batches the iterator yields in total.
	NumBatches() int
	// Close releases resources (a plugin stream, a file). Safe to call twice.
	Close() error
}

// Dataset is a source of examples with a fixed Spec.
type Dataset interface {
	// Spec describes the dataset; it does not change.
	Spec() Spec
	// Batches opens an iterator over one split as chosen by o.
	Batches(ctx context.Context, o BatchOptions) (Batches, error)
}

// Arrays is a whole split as contiguous arrays, for a trainer that uploads
// it once and gathers batches by index.
type Arrays struct {
	// Split is the split's name; Size its number of examples.
	Split string
	Size  int
	// Inputs holds Size·ExampleSize float32 values (DType Float32).
	Inputs []float32
	// Tokens holds Size·ExampleSize token ids (DType Int32).
	Tokens []int32
	// Labels holds Size·LabelSize labels.
	Labels []int32
}

// InMemory is a Dataset that already holds its splits in memory and can
// hand them out without copying. The returned slices must not be modified.
type InMemory interface {
	Dataset
	Arrays(split string) (Arrays, error)
}
