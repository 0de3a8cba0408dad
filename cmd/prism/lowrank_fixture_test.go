package main

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

// fixtureWeight is a generated weight with a known spectrum.
type fixtureWeight struct {
	m, n  int
	dtype safetensors.DType
	sigma []float64 // designed singular values, descending
	data  []float64 // W row-major, as stored (rounded to F32 when dtype is F32)
}

// fixture layers: four usable weights (F32 and F64, k = 16 or 12) and four
// that must be skipped at rank 4: a bias, a 3-D embedding, an I64 matrix and
// a 3×16 head with fewer than 4 singular values.
var fixtureShapes = []struct {
	name  string
	m, n  int
	dtype safetensors.DType
}{
	{"enc.q.weight", 24, 16, safetensors.F32},
	{"enc.fc1.weight", 40, 16, safetensors.F32},
	{"enc.fc2.weight", 16, 40, safetensors.F64},
	{"enc.wide.weight", 12, 30, safetensors.F32},
}

var fixtureSkipped = map[string]string{
	"enc.q.bias":  "not 2-D",
	"embed.pos":   "not 2-D",
	"ids":         "dtype I64 is not a float type",
	"head.weight": "rank 4 exceeds its 3 singular values",
}

// writeFixture writes the fixture model to dir/model.safetensors.
func writeFixture(t *testing.T, dir string) (string, map[string]fixtureWeight) {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	weights := map[string]fixtureWeight{}
	var tensors []safetensors.Tensor
	for i, s := range fixtureShapes {
		k := min(s.m, s.n)
		sigma := demoSpectrum(k, 0.4+0.2*float64(i), 3, 2)
		data := matrixWithSpectrum(rng, s.m, s.n, sigma)
		if s.dtype == safetensors.F32 {
			f32 := toFloat32(data)
			for j, v := range f32 {
				data[j] = float64(v)
			}
			tensors = append(tensors, safetensors.FromFloats(s.name, []int{s.m, s.n}, f32))
		} else {
			tensors = append(tensors, safetensors.FromFloats(s.name, []int{s.m, s.n}, data))
		}
		weights[s.name] = fixtureWeight{m: s.m, n: s.n, dtype: s.dtype, sigma: sigma, data: data}
	}
	ids := make([]byte, 6*8)
	for i := range 6 {
		binary.LittleEndian.PutUint64(ids[8*i:], uint64(i))
	}
	tensors = append(tensors,
		safetensors.FromFloats("enc.q.bias", []int{24}, make([]float32, 24)),
		safetensors.FromFloats("embed.pos", []int{1, 5, 16}, make([]float32, 80)),
		safetensors.FromRaw("ids", safetensors.I64, []int{2, 3}, ids),
		safetensors.FromFloats("head.weight", []int{3, 16}, toFloat32(matrixWithSpectrum(rng, 3, 16, []float64{3, 2, 1}))),
	)
	path := filepath.Join(dir, "model.safetensors")
	if err := safetensors.WriteFile(path, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return path, weights
}

// readAdapter reads NAME.lora_A, NAME.lora_B and NAME.base in float64.
func readAdapter(t *testing.T, r *safetensors.Reader, name string) (a, b, base lowrank.Matrix[float64]) {
	t.Helper()
	var err error
	if a, err = safetensors.ReadMatrix[float64](r, name+".lora_A"); err != nil {
		t.Fatal(err)
	}
	if b, err = safetensors.ReadMatrix[float64](r, name+".lora_B"); err != nil {
		t.Fatal(err)
	}
	if base, err = safetensors.ReadMatrix[float64](r, name+".base"); err != nil {
		t.Fatal(err)
	}
	return a, b, base
}

// dirEntries lists a directory's file names.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func columnNormSq(m lowrank.Matrix[float64], col int) float64 {
	var s float64
	for i := range m.Rows {
		s += m.At(i, col) * m.At(i, col)
	}
	return s
}

func rowNormSq(m lowrank.Matrix[float64], row int) float64 {
	var s float64
	for j := range m.Cols {
		s += m.At(row, j) * m.At(row, j)
	}
	return s
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }
