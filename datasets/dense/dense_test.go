package dense

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/prism-lora/prism/datasets"
)

// toy is a dataset of n 2×3×1 images whose pixels encode their index
// (pixel k of example i = i + k/10) and whose label is i mod 3.
func toy(t testing.TB, n int) *Dataset {
	t.Helper()
	spec := datasets.Spec{
		Name: "toy", Task: datasets.Classification, DType: datasets.Float32,
		Splits:       []datasets.Split{{Name: "train", Size: n}, {Name: "test", Size: 2}},
		ExampleShape: []int{2, 3, 1}, Classes: []string{"a", "b", "c"},
	}
	mk := func(n int) Split {
		s := Split{Inputs: make([]float32, n*6), Labels: make([]int32, n)}
		for i := range n {
			for k := range 6 {
				s.Inputs[i*6+k] = float32(i) + float32(k)/10
			}
			s.Labels[i] = int32(i % 3)
		}
		return s
	}
	train, test := mk(n), mk(2)
	train.Name, test.Name = "train", "test"
	d, err := New(spec, train, test)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// drain reads every batch and returns the indices visited, checking each
// batch's inputs and labels against the example they claim to be.
func drain(t *testing.T, d datasets.Dataset, o datasets.BatchOptions) (indices []int32, sizes []int) {
	t.Helper()
	it, err := d.Batches(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var b datasets.Batch
	for {
		err := it.Next(&b)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Inputs) != 6*b.Size || len(b.Labels) != b.Size || len(b.Indices) != b.Size {
			t.Fatalf("batch of %d has %d inputs, %d labels, %d indices", b.Size, len(b.Inputs), len(b.Labels), len(b.Indices))
		}
		for j, i := range b.Indices {
			for k := range 6 {
				if want := float32(i) + float32(k)/10; b.Inputs[j*6+k] != want {
					t.Fatalf("example %d pixel %d = %v, want %v", i, k, b.Inputs[j*6+k], want)
				}
			}
			if b.Labels[j] != i%3 {
				t.Fatalf("example %d label %d, want %d", i, b.Labels[j], i%3)
			}
		}
		indices = append(indices, b.Indices...)
		sizes = append(sizes, b.Size)
	}
	if len(sizes) != it.NumBatches() {
		t.Fatalf("got %d batches, NumBatches says %d", len(sizes), it.NumBatches())
	}
	if err := it.Next(&b); err != io.EOF {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
	return indices, sizes
}

// The documented algorithm, implemented independently in Python from the
// doc comment of Permutation, gave these orders.
func TestPermutationMatchesSpecifiedAlgorithm(t *testing.T) {
	for _, c := range []struct {
		n    int
		seed uint64
		want []int32
	}{
		{10, 0, []int32{4, 9, 2, 5, 1, 7, 6, 0, 3, 8}},
		{10, 42, []int32{8, 3, 6, 5, 4, 0, 9, 2, 1, 7}},
		{60000, 7, []int32{39440, 5058, 34367, 29420, 58428, 54336, 39022, 5859}},
	} {
		got := Permutation(c.n, c.seed)[:len(c.want)]
		if !slices.Equal(got, c.want) {
			t.Errorf("Permutation(%d, %d) starts %v, want %v", c.n, c.seed, got, c.want)
		}
	}
	for _, n := range []int{0, 1, 2, 1000} {
		p := Permutation(n, 3)
		s := slices.Clone(p)
		slices.Sort(s)
		for i, v := range s {
			if v != int32(i) {
				t.Fatalf("Permutation(%d) is not a permutation: %v", n, p)
			}
		}
	}
}

// Over many seeds each of the 6 orders of 3 elements appears about equally
// often: χ² with 5 degrees of freedom below 20.5 (p ≈ 0.001).
func TestPermutationIsUniform(t *testing.T) {
	const seeds = 60000
	counts := map[string]int{}
	for s := range uint64(seeds) {
		counts[fmt.Sprint(Permutation(3, s))]++
	}
	if len(counts) != 6 {
		t.Fatalf("saw %d distinct orders of 3 elements, want 6: %v", len(counts), counts)
	}
	chi2 := 0.0
	for _, c := range counts {
		d := float64(c) - seeds/6.0
		chi2 += d * d / (seeds / 6.0)
	}
	if chi2 > 20.5 {
		t.Errorf("χ² = %.1f over 6 orders (%v), want < 20.5", chi2, counts)
	}
}

func TestBatchesInOrderAndDropLast(t *testing.T) {
	d := toy(t, 10)
	idx, sizes := drain(t, d, datasets.BatchOptions{Split: "train", BatchSize: 4})
	if !slices.Equal(sizes, []int{4, 4, 2}) || !slices.Equal(idx, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("sizes %v indices %v", sizes, idx)
	}
	idx, sizes = drain(t, d, datasets.BatchOptions{Split: "train", BatchSize: 4, DropLast: true})
	if !slices.Equal(sizes, []int{4, 4}) || !slices.Equal(idx, []int32{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("drop last: sizes %v indices %v", sizes, idx)
	}
	_, sizes = drain(t, d, datasets.BatchOptions{Split: "test", BatchSize: 4, DropLast: true})
	if len(sizes) != 0 {
		t.Errorf("a 2-example split with batch 4 and DropLast gave batches %v", sizes)
	}
}

func TestShuffleIsDeterministicAndSeedDependent(t *testing.T) {
	d := toy(t, 100)
	o := datasets.BatchOptions{Split: "train", BatchSize: 7, Shuffle: true, Seed: 5}
	a, _ := drain(t, d, o)
	b, _ := drain(t, d, o)
	if !slices.Equal(a, b) {
		t.Fatal("two iterators with equal options visited different orders")
	}
	if want := Permutation(100, 5); !slices.Equal(a, want) {
		t.Fatalf("visiting order %v is not Permutation(100, 5) = %v", a, want)
	}
	o.Seed = 6
	c, _ := drain(t, d, o)
	if slices.Equal(a, c) {
		t.Fatal("seeds 5 and 6 gave the same order")
	}
}

func TestShardsAreDisjointAndCover(t *testing.T) {
	d := toy(t, 103)
	for _, shuffle := range []bool{false, true} {
		seen := make([]int, 103)
		var lens []int
		for s := range 4 {
			idx, _ := drain(t, d, datasets.BatchOptions{Split: "train", BatchSize: 8, Shuffle: shuffle, Seed: 9, Shard: s, NumShards: 4})
			for _, i := range idx {
				seen[i]++
			}
			lens = append(lens, len(idx))
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("shuffle=%v: example %d seen %d times over 4 shards", shuffle, i, c)
			}
		}
		if slices.Max(lens)-slices.Min(lens) > 1 {
			t.Fatalf("shard sizes %v differ by more than one", lens)
		}
	}
}

func TestNextAllocatesNothingOnceGrown(t *testing.T) {
	d := toy(t, 1000)
	it, err := d.Batches(context.Background(), datasets.BatchOptions{Split: "train", BatchSize: 10, Shuffle: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b datasets.Batch
	if err := it.Next(&b); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if err := it.Next(&b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Next allocates %.1f times per batch, want 0", allocs)
	}
}

func TestCancelledContextStopsIteration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	it, err := toy(t, 10).Batches(ctx, datasets.BatchOptions{Split: "train", BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	var b datasets.Batch
	if err := it.Next(&b); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := it.Next(&b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v, want context.Canceled", err)
	}
}

func TestBadOptions(t *testing.T) {
	d := toy(t, 10)
	for _, c := range []struct {
		o    datasets.BatchOptions
		want string
	}{
		{datasets.BatchOptions{Split: "valid", BatchSize: 1}, `no split "valid"`},
		{datasets.BatchOptions{Split: "train"}, "BatchSize 0"},
		{datasets.BatchOptions{Split: "train", BatchSize: 1, Shard: 2, NumShards: 2}, "shard 2 of 2"},
		{datasets.BatchOptions{Split: "train", BatchSize: 1, Shard: 1}, "shard 1 of 0"},
	} {
		if _, err := d.Batches(context.Background(), c.o); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "toy") {
			t.Errorf("%+v: got %v, want an error naming the dataset and %q", c.o, err, c.want)
		}
	}
}

func TestNewRejectsInconsistentData(t *testing.T) {
	spec := datasets.Spec{
		Name: "bad", Task: datasets.Classification, DType: datasets.Float32,
		Splits: []datasets.Split{{Name: "train", Size: 2}}, ExampleShape: []int{3}, Classes: []string{"x", "y"},
	}
	tokens := datasets.Spec{
		Name: "text", Task: datasets.LanguageModelling, DType: datasets.Int32, VocabSize: 4, PadToken: -1,
		Splits: []datasets.Split{{Name: "train", Size: 1}}, ExampleShape: []int{3}, LabelShape: []int{3},
	}
	for _, c := range []struct {
		spec   datasets.Spec
		splits []Split
		want   string
	}{
		{spec, []Split{{Name: "train", Inputs: make([]float32, 5), Labels: make([]int32, 2)}}, "want 2×3 float32 inputs"},
		{spec, []Split{{Name: "train", Inputs: make([]float32, 6), Labels: make([]int32, 3)}}, "want 2×1 labels"},
		{spec, []Split{{Name: "train", Inputs: make([]float32, 6), Labels: []int32{0, 2}}}, "label 0 of example 1 is 2"},
		{spec, nil, `no data for split "train"`},
		{spec, []Split{{Name: "val"}}, `split "val", which the spec does not list`},
		{tokens, []Split{{Name: "train", Tokens: []int32{0, 4, 1}, Labels: []int32{0, 1, 2}}}, "token 1 of example 0 is 4"},
		{tokens, []Split{{Name: "train", Tokens: []int32{0, 1, 1}, Labels: []int32{0, 1, -1}}}, "label 2 of example 0 is -1"},
		{datasets.Spec{Name: "nosplits"}, nil, "no splits"},
	} {
		if _, err := New(c.spec, c.splits...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.spec.Name, err, c.want)
		}
	}
}

// streamed hides the InMemory side of a dataset, as a plugin would.
type streamed struct{ datasets.Dataset }

func TestCollectMatchesArrays(t *testing.T) {
	d := toy(t, 2500)
	direct, err := Collect(context.Background(), d, "train")
	if err != nil {
		t.Fatal(err)
	}
	viaBatches, err := Collect(context.Background(), streamed{d}, "train")
	if err != nil {
		t.Fatal(err)
	}
	if direct.Size != 2500 || viaBatches.Size != 2500 ||
		!slices.Equal(direct.Inputs, viaBatches.Inputs) || !slices.Equal(direct.Labels, viaBatches.Labels) {
		t.Fatalf("Collect via batches differs from Arrays (sizes %d, %d)", direct.Size, viaBatches.Size)
	}
}

func ExamplePermutation() {
	fmt.Println(Permutation(10, 42))
	// Output: [8 3 6 5 4 0 9 2 1 7]
}

func ExampleDataset_Batches() {
	spec := datasets.Spec{
		Name: "pairs", Task: datasets.Classification, DType: datasets.Float32,
		Splits: []datasets.Split{{Name: "train", Size: 5}}, ExampleShape: []int{1}, Classes: []string{"even", "odd"},
	}
	d, _ := New(spec, Split{Name: "train", Inputs: []float32{0, 1, 2, 3, 4}, Labels: []int32{0, 1, 0, 1, 0}})
	it, _ := d.Batches(context.Background(), datasets.BatchOptions{Split: "train", BatchSize: 2, Shuffle: true, Seed: 1})
	var b datasets.Batch // reused by every Next
	for it.Next(&b) == nil {
		fmt.Println(b.Size, b.Inputs, b.Labels)
	}
	// Output:
	// 2 [1 0] [1 0]
	// 2 [3 4] [1 0]
	// 1 [2] [0]
}

// BenchmarkBatchesMNIST: shuffled batches of 128 MNIST-shaped images
// (784 float32 each) out of a 60,000-example split.
func BenchmarkBatchesMNIST(b *testing.B) {
	const n, e = 60000, 784
	spec := datasets.Spec{
		Name: "mnist-shaped", Task: datasets.Classification, DType: datasets.Float32,
		Splits: []datasets.Split{{Name: "train", Size: n}}, ExampleShape: []int{28, 28, 1},
		Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
	}
	d, err := New(spec, Split{Name: "train", Inputs: make([]float32, n*e), Labels: make([]int32, n)})
	if err != nil {
		b.Fatal(err)
	}
	var batch datasets.Batch
	var it datasets.Batches
	epoch := uint64(0)
	b.SetBytes(128 * e * 4)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if it == nil || it.Next(&batch) == io.EOF {
			epoch++
			it, _ = d.Batches(context.Background(), datasets.BatchOptions{Split: "train", BatchSize: 128, Shuffle: true, Seed: epoch, DropLast: true})
			if err := it.Next(&batch); err != nil {
				b.Fatal(err)
			}
		}
	}
}
