// Package text turns real text corpora into datasets with byte tokens:
// language-modelling sets (the King James Bible, Jane Austen's novels) and
// a text-classification set (the fortunes collection by category).
//
// Tokens are the UTF-8 bytes of the text (VocabSize 256). A corpus is a
// sequence of units (chapters); unit u goes to
//
//	"test"        when u mod 20 = 19,
//	"validation"  when u mod 20 = 18,
//	"train"       otherwise,
//
// so about 5% of the chapters are held out for each, interleaved through the
// corpus. A split's stream is its units' texts one after the other (each ends
// in "\n"); example k is the window stream[k·T : (k+1)·T] with labels
// stream[k·T+1 : (k+1)·T+1] (the next byte at every position), for
// k < ⌊(len−1)/T⌋. Bits per character on a split = mean cross-entropy over
// its examples / ln 2.
//
// For classification, a text is truncated to T bytes and padded with
// PadToken 0 (NUL, which no text of these corpora contains); the k-th text
// of each class goes to "test" when k mod 5 = 4, else to "train".
package text

import (
	"bytes"
	"fmt"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
)

// VocabSize is the number of byte tokens.
const VocabSize = 256

// PadToken fills classification examples past the end of their text.
const PadToken = 0

// SplitOf returns the split of unit u of a language-modelling corpus.
func SplitOf(u int) string {
	switch u % 20 {
	case 19:
		return datasets.Test
	case 18:
		return datasets.Validation
	}
	return datasets.Train
}

// Options name and size a text dataset.
type Options struct {
	Name, Description string
	// SeqLen is T, the number of tokens per example (> 0).
	SeqLen int
	// Checksum is copied into the Spec (see datasets.Spec.Checksum).
	Checksum string
}

// SplitStreams concatenates the units of each split (each unit followed by
// "\n" unless it already ends with one), in unit order.
func SplitStreams(units []string) map[string][]byte {
	out := map[string][]byte{}
	for u, t := range units {
		s := SplitOf(u)
		out[s] = append(out[s], t...)
		if len(t) == 0 || t[len(t)-1] != '\n' {
			out[s] = append(out[s], '\n')
		}
	}
	return out
}

// LanguageModel builds a byte-level language-modelling dataset from the
// corpus's units (chapters), split and windowed as the package documents.
func LanguageModel(o Options, units []string) (*dense.Dataset, error) {
	if o.SeqLen <= 0 {
		return nil, fmt.Errorf("text dataset %q: SeqLen %d, want > 0", o.Name, o.SeqLen)
	}
	streams := SplitStreams(units)
	t := o.SeqLen
	spec := datasets.Spec{
		Name: o.Name, Description: o.Description, Task: datasets.LanguageModelling,
		ExampleShape: []int{t}, LabelShape: []int{t}, DType: datasets.Int32,
		VocabSize: VocabSize, PadToken: -1, Checksum: o.Checksum,
	}
	var splits []dense.Split
	for _, name := range []string{datasets.Train, datasets.Validation, datasets.Test} {
		s := streams[name]
		n := 0
		if len(s) > 1 {
			n = (len(s) - 1) / t
		}
		sp := dense.Split{Name: name, Tokens: make([]int32, n*t), Labels: make([]int32, n*t)}
		for i := range sp.Tokens {
			sp.Tokens[i] = int32(s[i])
			sp.Labels[i] = int32(s[i+1])
		}
		spec.Splits = append(spec.Splits, datasets.Split{Name: name, Size: n})
		splits = append(splits, sp)
	}
	return dense.New(spec, splits...)
}

// Classification builds a text-classification dataset: texts[c] are the
// texts of class c (named classes[c]), in a fixed order.
func Classification(o Options, classes []string, texts [][]string) (*dense.Dataset, error) {
	if o.SeqLen <= 0 {
		return nil, fmt.Errorf("text dataset %q: SeqLen %d, want > 0", o.Name, o.SeqLen)
	}
	if len(classes) != len(texts) {
		return nil, fmt.Errorf("text dataset %q: %d class names for %d classes", o.Name, len(classes), len(texts))
	}
	t := o.SeqLen
	train := dense.Split{Name: datasets.Train}
	test := dense.Split{Name: datasets.Test}
	for c, docs := range texts {
		for k, doc := range docs {
			if i := bytes.IndexByte([]byte(doc), PadToken); i >= 0 {
				return nil, fmt.Errorf("text dataset %q: text %d of class %q contains the pad byte 0 at %d", o.Name, k, classes[c], i)
			}
			dst := &train
			if k%5 == 4 {
				dst = &test
			}
			for i := range t {
				tok := int32(PadToken)
				if i < len(doc) {
					tok = int32(doc[i])
				}
				dst.Tokens = append(dst.Tokens, tok)
			}
			dst.Labels = append(dst.Labels, int32(c))
		}
	}
	spec := datasets.Spec{
		Name: o.Name, Description: o.Description, Task: datasets.Classification,
		ExampleShape: []int{t}, DType: datasets.Int32, VocabSize: VocabSize, PadToken: PadToken,
		Classes: append([]string(nil), classes...), Checksum: o.Checksum,
		Splits: []datasets.Split{{Name: datasets.Train, Size: len(train.Labels)}, {Name: datasets.Test, Size: len(test.Labels)}},
	}
	return dense.New(spec, train, test)
}
