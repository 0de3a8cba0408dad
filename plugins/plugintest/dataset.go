package plugintest

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
	"github.com/prism-lora/prism/plugins/protocol"
)

// Pass is everything one pass over a split yielded, batch by batch.
type Pass struct {
	Sizes   []int
	Indices []int32
	Inputs  []float32
	Tokens  []int32
	Labels  []int32
}

// Collect runs one pass and gathers its batches (copying them, since
// iterators reuse their slices).
func Collect(ctx context.Context, d datasets.Dataset, o datasets.BatchOptions) (Pass, error) {
	var p Pass
	it, err := d.Batches(ctx, o)
	if err != nil {
		return p, err
	}
	defer it.Close()
	var b datasets.Batch
	for {
		err := it.Next(&b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return p, err
		}
		p.Sizes = append(p.Sizes, b.Size)
		p.Indices = append(p.Indices, b.Indices...)
		p.Inputs = append(p.Inputs, b.Inputs...)
		p.Tokens = append(p.Tokens, b.Tokens...)
		p.Labels = append(p.Labels, b.Labels...)
	}
	if len(p.Sizes) != it.NumBatches() {
		return p, errors.New("the pass yielded a different number of batches than NumBatches said")
	}
	return p, nil
}

// CheckDatasetPlugin runs the conformance suite on a dataset plugin binary
// (named prism-dataset-NAME): a valid spec named NAME; on the smallest
// split, an unshuffled pass in stored order covering every example once,
// shuffled passes that are permutations, equal for equal seeds, different
// for different seeds, and agree example by example with the unshuffled
// pass; shards that are disjoint slices of the shuffled order covering the
// split; full batches with DropLast; an error (not a crash) for an unknown
// split; and one batch from every other split.
func CheckDatasetPlugin(t *testing.T, binary string) {
	t.Helper()
	name := kindAndName(t, binary, protocol.KindDataset)
	t.Run("RefusesToRunByHand", func(t *testing.T) { checkRefusesToRunByHand(t, binary) })
	h := newHost(t, Install(t, binary))
	ctx := context.Background()
	d, err := h.Dataset(ctx, name)
	if err != nil {
		t.Fatalf("opening the plugin: %v", err)
	}
	spec := d.Spec()
	small := spec.Splits[0]
	for _, sp := range spec.Splits {
		if sp.Size > 0 && (small.Size == 0 || sp.Size < small.Size) {
			small = sp
		}
	}
	if small.Size == 0 {
		t.Fatalf("dataset %q: every split is empty", name)
	}
	n := small.Size
	const bs = 7
	plain, err := Collect(ctx, d, datasets.BatchOptions{Split: small.Name, BatchSize: bs})
	if err != nil {
		t.Fatalf("unshuffled pass over %q: %v", small.Name, err)
	}
	if len(plain.Indices) != n || len(plain.Sizes) != dense.NumBatches(n, bs, false) {
		t.Fatalf("unshuffled pass over %q: %d examples in %d batches, want %d in %d", small.Name, len(plain.Indices), len(plain.Sizes), n, dense.NumBatches(n, bs, false))
	}
	for i, ix := range plain.Indices {
		if int(ix) != i {
			t.Fatalf("unshuffled pass over %q: example %d has index %d, want stored order", small.Name, i, ix)
		}
	}
	ex, lb := spec.ExampleSize(), spec.LabelSize()
	example := func(p Pass, i int) (in []float32, tok []int32, y []int32) {
		if len(p.Inputs) > 0 {
			in = p.Inputs[i*ex : (i+1)*ex]
		}
		if len(p.Tokens) > 0 {
			tok = p.Tokens[i*ex : (i+1)*ex]
		}
		return in, tok, p.Labels[i*lb : (i+1)*lb]
	}

	shuffled := func(seed uint64) Pass {
		p, err := Collect(ctx, d, datasets.BatchOptions{Split: small.Name, BatchSize: bs, Shuffle: true, Seed: seed})
		if err != nil {
			t.Fatalf("shuffled pass (seed %d) over %q: %v", seed, small.Name, err)
		}
		return p
	}
	s1, s1again, s2 := shuffled(1), shuffled(1), shuffled(2)
	sorted := slices.Clone(s1.Indices)
	slices.Sort(sorted)
	if !slices.Equal(sorted, plain.Indices) {
		t.Errorf("shuffled pass over %q is not a permutation of the split", small.Name)
	}
	if !slices.Equal(s1.Indices, s1again.Indices) || !slices.Equal(s1.Inputs, s1again.Inputs) || !slices.Equal(s1.Tokens, s1again.Tokens) || !slices.Equal(s1.Labels, s1again.Labels) {
		t.Errorf("two shuffled passes with seed 1 differ")
	}
	if n > 2 && slices.Equal(s1.Indices, s2.Indices) {
		t.Errorf("seeds 1 and 2 give the same order")
	}
	for i, ix := range s1.Indices {
		a1, b1, c1 := example(s1, i)
		a0, b0, c0 := example(plain, int(ix))
		if !slices.Equal(a1, a0) || !slices.Equal(b1, b0) || !slices.Equal(c1, c0) {
			t.Fatalf("example %d of %q differs between the shuffled and the stored-order pass", ix, small.Name)
		}
	}

	const shards = 3
	var union []int32
	for sh := range shards {
		p, err := Collect(ctx, d, datasets.BatchOptions{Split: small.Name, BatchSize: bs, Shuffle: true, Seed: 1, Shard: sh, NumShards: shards, DropLast: false})
		if err != nil {
			t.Fatalf("shard %d: %v", sh, err)
		}
		lo, hi := dense.ShardRange(n, sh, shards)
		if !slices.Equal(p.Indices, s1.Indices[lo:hi]) {
			t.Errorf("shard %d of %d is not positions [%d, %d) of the shuffled order", sh, shards, lo, hi)
		}
		union = append(union, p.Indices...)
	}
	slices.Sort(union)
	if !slices.Equal(union, plain.Indices) {
		t.Errorf("the %d shards do not cover the split exactly once", shards)
	}

	dl, err := Collect(ctx, d, datasets.BatchOptions{Split: small.Name, BatchSize: bs, DropLast: true})
	if err != nil {
		t.Fatalf("drop-last pass: %v", err)
	}
	if len(dl.Sizes) != n/bs || slices.ContainsFunc(dl.Sizes, func(s int) bool { return s != bs }) {
		t.Errorf("drop-last pass: batch sizes %v, want %d batches of %d", dl.Sizes, n/bs, bs)
	}

	if _, err := Collect(ctx, d, datasets.BatchOptions{Split: "no-such-split", BatchSize: bs}); err == nil {
		t.Errorf("a pass over an unknown split succeeded")
	}
	for _, sp := range spec.Splits {
		if sp.Size == 0 {
			continue
		}
		it, err := d.Batches(ctx, datasets.BatchOptions{Split: sp.Name, BatchSize: bs, Shuffle: true, Seed: 3})
		if err != nil {
			t.Errorf("split %q: %v", sp.Name, err)
			continue
		}
		var b datasets.Batch
		if err := it.Next(&b); err != nil {
			t.Errorf("split %q: first batch: %v", sp.Name, err)
		}
		it.Close()
	}
	// The plugin still answers after a pass was abandoned half-way.
	if _, err := Collect(ctx, d, datasets.BatchOptions{Split: small.Name, BatchSize: n}); err != nil {
		t.Errorf("a pass after an abandoned one: %v", err)
	}
}
