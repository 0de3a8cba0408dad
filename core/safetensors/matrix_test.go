package safetensors

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
)

type myFloat32 float32

func TestMatrixRoundTrip(t *testing.T) {
	w32 := lowrank.Matrix[float32]{Rows: 2, Cols: 3, Data: []float32{1, 2, 3, 4, 5, 6}}
	w64 := lowrank.Matrix[float64]{Rows: 3, Cols: 1, Data: []float64{math.Pi, math.E, -1e-300}}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	tensors := []Tensor{FromMatrix("w32", w32), FromMatrix("w64", w64),
		FromFloats("vec", []int{3}, []float32{1, 2, 3}),
		FromRaw("half", F16, []int{1, 2}, u16le(0x3c00, 0x3555))}
	if err := WriteFile(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if info, _ := r.Info("w32"); info.DType != F32 || !slices.Equal(info.Shape, []int{2, 3}) {
		t.Fatalf("w32 stored as %s %v", info.DType, info.Shape)
	}
	if info, _ := r.Info("w64"); info.DType != F64 || !slices.Equal(info.Shape, []int{3, 1}) {
		t.Fatalf("w64 stored as %s %v", info.DType, info.Shape)
	}
	got32, err := ReadMatrix[float32](r, "w32")
	if err != nil || got32.Rows != 2 || got32.Cols != 3 || !slices.Equal(got32.Data, w32.Data) {
		t.Fatalf("w32 = %+v, %v", got32, err)
	}
	got64, err := ReadMatrix[float64](r, "w64")
	if err != nil || got64.Rows != 3 || got64.Cols != 1 || !slices.Equal(got64.Data, w64.Data) {
		t.Fatalf("w64 = %+v, %v", got64, err)
	}
	wide, err := ReadMatrix[float64](r, "w32")
	if err != nil || wide.At(1, 2) != 6 {
		t.Fatalf("w32 as float64 = %+v, %v", wide, err)
	}
	named, err := ReadMatrix[myFloat32](r, "w32")
	if err != nil || named.At(1, 0) != 4 {
		t.Fatalf("w32 as a named float32 type = %+v, %v", named, err)
	}
	half, err := ReadMatrix[float32](r, "half")
	if err != nil || half.At(0, 0) != 1 || half.At(0, 1) != HalfToFloat32(0x3555) {
		t.Fatalf("F16 matrix = %+v, %v", half, err)
	}
	if _, err := ReadMatrix[float32](r, "w64"); err == nil || !strings.Contains(err.Error(), "F64") {
		t.Fatalf("F64 as float32: %v", err)
	}
	if _, err := ReadMatrix[float64](r, "vec"); err == nil || !strings.Contains(err.Error(), "2 dimensions") {
		t.Fatalf("1-D as matrix: %v", err)
	}
}
