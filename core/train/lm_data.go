package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
)

// textWindows is a language-modelling split cut into windows of the model's
// context T: window w is T consecutive tokens of one example with their T
// next-token labels. An example of W tokens (W a multiple of T) gives W/T
// windows, so no window crosses an example boundary and the labels stay
// exactly those the dataset gives. A subset keeps the first N windows of one
// fixed permutation (as classification subsets do).
type textWindows struct {
	name     string // "kjv/test", for messages
	tokens   []int32
	labels   []int32
	index    []int32 // windows used, in order (nil: all)
	total    int     // windows in the split
	seqLen   int     // T
	vocab    int
	checksum string
}

// loadTextSplit takes split of d as windows of seqLen tokens, restricted to
// limit windows when 0 < limit < their number.
func loadTextSplit(d datasets.InMemory, split string, seqLen, limit int) (textWindows, error) {
	spec := d.Spec()
	if spec.Task != datasets.LanguageModelling || spec.DType != datasets.Int32 {
		return textWindows{}, fmt.Errorf("dataset %s: task %s with %s inputs; a language model needs int32 language-modelling data", spec.Name, spec.Task, spec.DType)
	}
	if len(spec.ExampleShape) != 1 || len(spec.LabelShape) != 1 || spec.LabelShape[0] != spec.ExampleShape[0] {
		return textWindows{}, fmt.Errorf("dataset %s: examples %v with labels %v; a language model needs token sequences [T] with one label per token", spec.Name, spec.ExampleShape, spec.LabelShape)
	}
	w := spec.ExampleShape[0]
	if seqLen <= 0 || w%seqLen != 0 {
		return textWindows{}, fmt.Errorf("dataset %s: examples of %d tokens cannot be cut into windows of the model's context %d (it must divide %d)", spec.Name, w, seqLen, w)
	}
	if limit < 0 {
		return textWindows{}, fmt.Errorf("dataset %s: subset size %d, want ≥ 0 (0 = all)", spec.Name, limit)
	}
	a, err := d.Arrays(split)
	if err != nil {
		return textWindows{}, err
	}
	tw := textWindows{
		name: spec.Name + "/" + split, tokens: a.Tokens, labels: a.Labels, total: a.Size * (w / seqLen),
		seqLen: seqLen, vocab: spec.VocabSize, checksum: spec.Checksum,
	}
	if len(a.Tokens) != len(a.Labels) || len(a.Tokens) != a.Size*w {
		return textWindows{}, fmt.Errorf("dataset %s: split %s has %d tokens and %d labels for %d examples of %d", spec.Name, split, len(a.Tokens), len(a.Labels), a.Size, w)
	}
	for _, y := range a.Labels {
		if y < 0 || int(y) >= spec.VocabSize {
			return textWindows{}, fmt.Errorf("dataset %s: split %s has label %d outside the vocabulary [0, %d)", spec.Name, split, y, spec.VocabSize)
		}
	}
	if limit > 0 && limit < tw.total {
		tw.index = dense.Permutation(tw.total, subsetSeed)[:limit]
	}
	return tw, nil
}

// Len is the number of windows.
func (t textWindows) Len() int {
	if t.index != nil {
		return len(t.index)
	}
	return t.total
}

// first returns the first n windows of t (all when n ≥ Len()).
func (t textWindows) first(n int) textWindows {
	if n >= t.Len() {
		return t
	}
	out := t
	out.index = make([]int32, n)
	for i := range n {
		out.index[i] = int32(t.position(i))
	}
	return out
}

// Tokens is the number of predicted positions, Len()·T.
func (t textWindows) Tokens() int { return t.Len() * t.seqLen }

// position maps window i of t to its window in the split.
func (t textWindows) position(i int) int {
	if t.index != nil {
		return int(t.index[i])
	}
	return i
}

// window returns window i's tokens and labels (views, not copies).
func (t textWindows) window(i int) (tokens, labels []int32) {
	p := t.position(i) * t.seqLen
	return t.tokens[p : p+t.seqLen], t.labels[p : p+t.seqLen]
}

// batch fills [size, T] token and label tensors with the windows order[0…];
// rows past len(order) are zero padding (evaluation batches keep one shape).
func (t textWindows) batch(order []int, size int) (*tensors.Tensor, *tensors.Tensor) {
	xs := make([]int32, size*t.seqLen)
	ys := make([]int32, size*t.seqLen)
	for j, i := range order {
		x, y := t.window(i)
		copy(xs[j*t.seqLen:], x)
		copy(ys[j*t.seqLen:], y)
	}
	return tensors.FromFlatDataAndDimensions(xs, size, t.seqLen), tensors.FromFlatDataAndDimensions(ys, size, t.seqLen)
}

// textChecksum identifies a language-modelling dataset's examples: its
// Spec's checksum, or a SHA-256 over its tokens and labels when the Spec has
// none (datasets built in tests).
func textChecksum(d datasets.InMemory) (string, error) {
	spec := d.Spec()
	if spec.Checksum != "" {
		return spec.Checksum, nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "prism-text-data\n%s\n%v\n%d\n", spec.Name, spec.ExampleShape, spec.VocabSize)
	buf := make([]byte, 4)
	for _, sp := range spec.Splits {
		a, err := d.Arrays(sp.Name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", sp.Name, a.Size)
		for _, vs := range [][]int32{a.Tokens, a.Labels} {
			for _, v := range vs {
				binary.LittleEndian.PutUint32(buf, uint32(v))
				h.Write(buf)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
