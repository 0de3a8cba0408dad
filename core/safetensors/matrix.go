package safetensors

import (
	"fmt"
	"unsafe"

	"github.com/prism-lora/prism/core/lowrank"
)

// ReadMatrix reads the named 2-D tensor of shape [m, n] as an m×n row-major
// lowrank.Matrix (PEFT's out×in for a linear weight). With T float64 any
// float dtype is widened exactly; with T float32, F32, F16 and BF16 are read
// and F64 is refused rather than rounded.
func ReadMatrix[T lowrank.Float](r *Reader, name string) (lowrank.Matrix[T], error) {
	t, err := r.Info(name)
	if err != nil {
		return lowrank.Matrix[T]{}, err
	}
	if len(t.Shape) != 2 {
		return lowrank.Matrix[T]{}, fmt.Errorf("safetensors file %s: tensor %q has shape %v; a matrix needs 2 dimensions",
			r.name, name, t.Shape)
	}
	var data []T
	if unsafe.Sizeof(*new(T)) == 4 {
		v, err := r.Float32s(name)
		if err != nil {
			return lowrank.Matrix[T]{}, err
		}
		data = unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(v))), len(v)) // same memory layout
	} else {
		v, err := r.Float64s(name)
		if err != nil {
			return lowrank.Matrix[T]{}, err
		}
		data = unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(v))), len(v))
	}
	return lowrank.Matrix[T]{Rows: t.Shape[0], Cols: t.Shape[1], Data: data}, nil
}

// FromMatrix wraps m (not copied) as a tensor of shape [Rows, Cols]: F32
// for a float32 matrix, F64 for a float64 one.
func FromMatrix[T lowrank.Float](name string, m lowrank.Matrix[T]) Tensor {
	return FromFloats(name, []int{m.Rows, m.Cols}, m.Data)
}
