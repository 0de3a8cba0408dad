package protocol

import (
	"fmt"
	"math"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/plugins/proto/prismpb"
)

// Names of the tensors of a batch.
const (
	TensorX       = "x"       // size × example shape, float32 or int32
	TensorY       = "y"       // size × label shape, int32
	TensorIndices = "indices" // size, int32
)

func ints64(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

func intsFrom64(xs []int64) ([]int, error) {
	out := make([]int, len(xs))
	for i, x := range xs {
		if x < 0 || x > math.MaxInt32 {
			return nil, fmt.Errorf("dimension %d out of range", x)
		}
		out[i] = int(x)
	}
	return out, nil
}

// SpecToPB encodes a dataset spec.
func SpecToPB(s datasets.Spec) (*prismpb.DatasetSpec, error) {
	p := &prismpb.DatasetSpec{
		Name: s.Name, Description: s.Description, Task: string(s.Task),
		ExampleShape: ints64(s.ExampleShape), LabelShape: ints64(s.LabelShape),
		Classes: s.Classes, VocabSize: int64(s.VocabSize), PadToken: s.PadToken,
		PixelScale: s.PixelScale, Checksum: s.Checksum,
	}
	switch s.DType {
	case datasets.Float32:
		p.Dtype = prismpb.DType_FLOAT32
	case datasets.Int32:
		p.Dtype = prismpb.DType_INT32
	default:
		return nil, fmt.Errorf("dataset %q: unknown dtype %q", s.Name, s.DType)
	}
	for _, sp := range s.Splits {
		p.Splits = append(p.Splits, &prismpb.Split{Name: sp.Name, Size: int64(sp.Size)})
	}
	return p, nil
}

// SpecFromPB decodes a dataset spec and validates it (datasets.Spec.Validate).
func SpecFromPB(p *prismpb.DatasetSpec) (datasets.Spec, error) {
	s := datasets.Spec{
		Name: p.GetName(), Description: p.GetDescription(), Task: datasets.Task(p.GetTask()),
		Classes: p.GetClasses(), VocabSize: int(p.GetVocabSize()), PadToken: p.GetPadToken(),
		PixelScale: p.GetPixelScale(), Checksum: p.GetChecksum(),
	}
	var err error
	if s.ExampleShape, err = intsFrom64(p.GetExampleShape()); err != nil {
		return s, fmt.Errorf("dataset %q: example shape: %w", s.Name, err)
	}
	if s.LabelShape, err = intsFrom64(p.GetLabelShape()); err != nil {
		return s, fmt.Errorf("dataset %q: label shape: %w", s.Name, err)
	}
	if len(s.LabelShape) == 0 {
		s.LabelShape = nil
	}
	switch p.GetDtype() {
	case prismpb.DType_FLOAT32:
		s.DType = datasets.Float32
	case prismpb.DType_INT32:
		s.DType = datasets.Int32
	default:
		return s, fmt.Errorf("dataset %q: dtype %v is not FLOAT32 or INT32", s.Name, p.GetDtype())
	}
	for _, sp := range p.GetSplits() {
		if sp.GetSize() < 0 || sp.GetSize() > math.MaxInt32 {
			return s, fmt.Errorf("dataset %q: split %q size %d out of range", s.Name, sp.GetName(), sp.GetSize())
		}
		s.Splits = append(s.Splits, datasets.Split{Name: sp.GetName(), Size: int(sp.GetSize())})
	}
	return s, s.Validate()
}

// OptionsToPB encodes batch options.
func OptionsToPB(o datasets.BatchOptions) *prismpb.BatchesRequest {
	return &prismpb.BatchesRequest{
		Split: o.Split, BatchSize: int64(o.BatchSize), Shuffle: o.Shuffle, Seed: o.Seed,
		Shard: int64(o.Shard), NumShards: int64(o.NumShards), DropLast: o.DropLast,
	}
}

// OptionsFromPB decodes batch options.
func OptionsFromPB(p *prismpb.BatchesRequest) (datasets.BatchOptions, error) {
	for _, v := range []int64{p.GetBatchSize(), p.GetShard(), p.GetNumShards()} {
		if v < 0 || v > math.MaxInt32 {
			return datasets.BatchOptions{}, fmt.Errorf("batch options %v: value %d out of range", p, v)
		}
	}
	return datasets.BatchOptions{
		Split: p.GetSplit(), BatchSize: int(p.GetBatchSize()), Shuffle: p.GetShuffle(), Seed: p.GetSeed(),
		Shard: int(p.GetShard()), NumShards: int(p.GetNumShards()), DropLast: p.GetDropLast(),
	}, nil
}

// BatchTensors announces a batch of spec's dataset: x, y and indices,
// sharing the batch's memory.
func BatchTensors(s datasets.Spec, b *datasets.Batch) []Tensor {
	xShape := append([]int64{int64(b.Size)}, ints64(s.ExampleShape)...)
	yShape := append([]int64{int64(b.Size)}, ints64(s.LabelShape)...)
	x := Tensor{Header: &prismpb.TensorHeader{Name: TensorX, Shape: xShape}}
	if s.DType == datasets.Int32 {
		x.Header.Dtype, x.I32 = prismpb.DType_INT32, b.Tokens
	} else {
		x.Header.Dtype, x.F32 = prismpb.DType_FLOAT32, b.Inputs
	}
	y := Tensor{Header: &prismpb.TensorHeader{Name: TensorY, Dtype: prismpb.DType_INT32, Shape: yShape}, I32: b.Labels}
	idx := Tensor{Header: &prismpb.TensorHeader{Name: TensorIndices, Dtype: prismpb.DType_INT32, Shape: []int64{int64(b.Size)}}, I32: b.Indices}
	return []Tensor{x, y, idx}
}
