// Package dense is the in-memory datasets.Dataset: every split held as
// contiguous arrays, batches copied out of them into the caller's reusable
// Batch (no allocation per batch once the Batch has grown), with the
// deterministic shuffle and sharding that package datasets specifies.
// Loaders (mnist, digits, text) build one with New; the plugin SDK can serve
// one as is.
package dense

import (
	"context"
	"fmt"
	"io"

	"github.com/prism-lora/prism/datasets"
)

// Split is the data of one split: Size examples, with Inputs (Float32
// specs) or Tokens (Int32 specs) holding Size·ExampleSize values and Labels
// Size·LabelSize values, example after example.
type Split struct {
	Name   string
	Inputs []float32
	Tokens []int32
	Labels []int32
}

// Dataset holds every split of a Spec in memory. It implements
// datasets.Dataset and datasets.InMemory and is safe for concurrent use
// (iterators are independent; the arrays are never written after New).
type Dataset struct {
	spec   datasets.Spec
	splits map[string]Split
}

var (
	_ datasets.Dataset  = (*Dataset)(nil)
	_ datasets.InMemory = (*Dataset)(nil)
)

// New checks that the splits match the spec exactly — one Split per spec
// split, array lengths Size·ExampleSize and Size·LabelSize, class labels in
// [0, NumClasses), tokens in [0, VocabSize) or PadToken, next-token labels
// in [0, VocabSize) — and returns the dataset. It keeps the slices without
// copying; the caller must not modify them afterwards.
func New(spec datasets.Spec, splits ...Split) (*Dataset, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	d := &Dataset{spec: spec, splits: make(map[string]Split, len(splits))}
	for _, s := range splits {
		if _, ok := spec.SplitSize(s.Name); !ok {
			return nil, fmt.Errorf("dataset %q: data given for split %q, which the spec does not list (have %v)",
				spec.Name, s.Name, spec.SplitNames())
		}
		if _, dup := d.splits[s.Name]; dup {
			return nil, fmt.Errorf("dataset %q: split %q given twice", spec.Name, s.Name)
		}
		d.splits[s.Name] = s
	}
	e, l := spec.ExampleSize(), spec.LabelSize()
	for _, sp := range spec.Splits {
		s, ok := d.splits[sp.Name]
		if !ok {
			return nil, fmt.Errorf("dataset %q: no data for split %q", spec.Name, sp.Name)
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("dataset %q split %q: %s", spec.Name, sp.Name, fmt.Sprintf(format, args...))
		}
		switch spec.DType {
		case datasets.Float32:
			if len(s.Inputs) != sp.Size*e || len(s.Tokens) != 0 {
				return nil, bad("want %d×%d float32 inputs and no tokens, got %d inputs and %d tokens",
					sp.Size, e, len(s.Inputs), len(s.Tokens))
			}
		case datasets.Int32:
			if len(s.Tokens) != sp.Size*e || len(s.Inputs) != 0 {
				return nil, bad("want %d×%d int32 tokens and no float inputs, got %d tokens and %d inputs",
					sp.Size, e, len(s.Tokens), len(s.Inputs))
			}
			for i, t := range s.Tokens {
				if (t < 0 || int(t) >= spec.VocabSize) && t != spec.PadToken {
					return nil, bad("token %d of example %d is %d, outside [0, %d) and not the pad token %d",
						i%e, i/e, t, spec.VocabSize, spec.PadToken)
				}
			}
		}
		if len(s.Labels) != sp.Size*l {
			return nil, bad("want %d×%d labels, got %d", sp.Size, l, len(s.Labels))
		}
		limit, what := spec.NumClasses(), "classes"
		if spec.Task == datasets.LanguageModelling {
			limit, what = spec.VocabSize, "vocabulary"
		}
		for i, y := range s.Labels {
			if y < 0 || int(y) >= limit {
				return nil, bad("label %d of example %d is %d, outside [0, %d) (%d %s)", i%l, i/l, y, limit, limit, what)
			}
		}
	}
	return d, nil
}

// Spec returns the dataset's Spec.
func (d *Dataset) Spec() datasets.Spec { return d.spec }

// Arrays returns the whole split without copying. The slices must not be
// modified.
func (d *Dataset) Arrays(split string) (datasets.Arrays, error) {
	s, ok := d.splits[split]
	if !ok {
		return datasets.Arrays{}, fmt.Errorf("dataset %q: no split %q (have %v)", d.spec.Name, split, d.spec.SplitNames())
	}
	n, _ := d.spec.SplitSize(split)
	return datasets.Arrays{Split: split, Size: n, Inputs: s.Inputs, Tokens: s.Tokens, Labels: s.Labels}, nil
}

// Batches opens an iterator over one split; see datasets.BatchOptions for
// the order. Opening costs one permutation of the split when shuffling
// (O(N), 4·N bytes); Next copies the batch's examples into dst and
// allocates nothing once dst's slices have grown to the batch size.
func (d *Dataset) Batches(ctx context.Context, o datasets.BatchOptions) (datasets.Batches, error) {
	if err := o.Check(d.spec); err != nil {
		return nil, err
	}
	n, _ := d.spec.SplitSize(o.Split)
	lo, hi := ShardRange(n, o.Shard, o.NumShards)
	it := &iterator{
		ctx:   ctx,
		split: d.splits[o.Split],
		float: d.spec.DType == datasets.Float32,
		e:     d.spec.ExampleSize(),
		l:     d.spec.LabelSize(),
		bs:    o.BatchSize,
		lo:    lo,
		hi:    hi,
		next:  lo,
	}
	if o.Shuffle {
		it.order = Permutation(n, o.Seed)
	}
	it.numBatches = NumBatches(hi-lo, o.BatchSize, o.DropLast)
	return it, nil
}

// NumBatches is the number of batches a shard of n examples yields:
// ⌊n/batchSize⌋ with dropLast, ⌈n/batchSize⌉ without.
func NumBatches(n, batchSize int, dropLast bool) int {
	if dropLast {
		return n / batchSize
	}
	return (n + batchSize - 1) / batchSize
}

// ShardRange is the half-open range [⌊shard·n/shards⌋, ⌊(shard+1)·n/shards⌋)
// of positions (in visiting order) that shard takes of n examples; shards
// 0 means 1.
func ShardRange(n, shard, shards int) (lo, hi int) {
	if shards <= 0 {
		shards = 1
	}
	return shard * n / shards, (shard + 1) * n / shards
}

// iterator walks positions [lo, hi) of the split's visiting order (order,
// or the identity when order is nil).
type iterator struct {
	ctx        context.Context
	split      Split
	float      bool
	order      []int32
	e, l, bs   int
	lo, hi     int
	next       int
	numBatches int
	emitted    int
}

func (it *iterator) NumBatches() int { return it.numBatches }

func (it *iterator) Close() error {
	it.emitted = it.numBatches
	return nil
}

func (it *iterator) Next(dst *datasets.Batch) error {
	if it.emitted >= it.numBatches {
		return io.EOF
	}
	if it.ctx != nil {
		if err := it.ctx.Err(); err != nil {
			return err
		}
	}
	k := min(it.bs, it.hi-it.next)
	first := it.next
	it.next += k
	it.emitted++

	dst.Size = k
	dst.Indices = resize(dst.Indices, k)
	if it.order == nil {
		for j := range k {
			dst.Indices[j] = int32(first + j)
		}
	} else {
		copy(dst.Indices, it.order[first:first+k])
	}
	e, l := it.e, it.l
	s := it.split
	if it.float {
		dst.Inputs = resize(dst.Inputs, k*e)
		dst.Tokens = dst.Tokens[:0]
		if it.order == nil {
			copy(dst.Inputs, s.Inputs[first*e:(first+k)*e])
		} else {
			for j, i := range dst.Indices {
				copy(dst.Inputs[j*e:(j+1)*e], s.Inputs[int(i)*e:int(i+1)*e])
			}
		}
	} else {
		dst.Tokens = resize(dst.Tokens, k*e)
		dst.Inputs = dst.Inputs[:0]
		if it.order == nil {
			copy(dst.Tokens, s.Tokens[first*e:(first+k)*e])
		} else {
			for j, i := range dst.Indices {
				copy(dst.Tokens[j*e:(j+1)*e], s.Tokens[int(i)*e:int(i+1)*e])
			}
		}
	}
	dst.Labels = resize(dst.Labels, k*l)
	if it.order == nil {
		copy(dst.Labels, s.Labels[first*l:(first+k)*l])
	} else if l == 1 {
		for j, i := range dst.Indices {
			dst.Labels[j] = s.Labels[i]
		}
	} else {
		for j, i := range dst.Indices {
			copy(dst.Labels[j*l:(j+1)*l], s.Labels[int(i)*l:int(i+1)*l])
		}
	}
	return nil
}

// resize returns s with length n, reusing its capacity when it suffices.
func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// Collect returns a whole split of any Dataset as contiguous arrays: without
// copying when d is datasets.InMemory, otherwise by reading every batch in
// stored order (for datasets served by plugins). It checks that the batches
// deliver exactly the split's size and the Spec's lengths.
func Collect(ctx context.Context, d datasets.Dataset, split string) (datasets.Arrays, error) {
	if m, ok := d.(datasets.InMemory); ok {
		return m.Arrays(split)
	}
	spec := d.Spec()
	it, err := d.Batches(ctx, datasets.BatchOptions{Split: split, BatchSize: 1024})
	if err != nil {
		return datasets.Arrays{}, err
	}
	defer it.Close()
	n, _ := spec.SplitSize(split)
	e, l := spec.ExampleSize(), spec.LabelSize()
	out := datasets.Arrays{Split: split, Labels: make([]int32, 0, n*l)}
	if spec.DType == datasets.Float32 {
		out.Inputs = make([]float32, 0, n*e)
	} else {
		out.Tokens = make([]int32, 0, n*e)
	}
	var b datasets.Batch
	for {
		err := it.Next(&b)
		if err == io.EOF {
			break
		}
		if err != nil {
			return datasets.Arrays{}, fmt.Errorf("dataset %q split %q: batch after %d examples: %w", spec.Name, split, out.Size, err)
		}
		if len(b.Inputs) != b.Size*e && len(b.Tokens) != b.Size*e || len(b.Labels) != b.Size*l {
			return datasets.Arrays{}, fmt.Errorf("dataset %q split %q: batch of %d examples has %d inputs, %d tokens, %d labels; want %d inputs and %d labels",
				spec.Name, split, b.Size, len(b.Inputs), len(b.Tokens), len(b.Labels), b.Size*e, b.Size*l)
		}
		out.Inputs = append(out.Inputs, b.Inputs...)
		out.Tokens = append(out.Tokens, b.Tokens...)
		out.Labels = append(out.Labels, b.Labels...)
		out.Size += b.Size
	}
	if out.Size != n {
		return datasets.Arrays{}, fmt.Errorf("dataset %q split %q: batches delivered %d examples, spec says %d", spec.Name, split, out.Size, n)
	}
	return out, nil
}
