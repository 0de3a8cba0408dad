package safetensors

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchmarkFile writes one F32 tensor of n elements and returns its path.
func benchmarkFile(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.safetensors")
	v := randomFloats[float32](rand.New(rand.NewPCG(1, 1)), n)
	if err := WriteFile(path, []Tensor{FromFloats("w", []int{n}, v)}, nil); err != nil {
		b.Fatal(err)
	}
	return path
}

const benchElements = 8 << 20 // 32 MiB of F32

// BenchmarkReadFloat32s decodes a tensor into []float32; compare with
// BenchmarkReadFileBaseline, the bare cost of reading the same bytes.
func BenchmarkReadFloat32s(b *testing.B) {
	path := benchmarkFile(b, benchElements)
	r, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(4 * benchElements)
	for b.Loop() {
		if _, err := r.Float32s("w"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadFloat64s(b *testing.B) {
	path := benchmarkFile(b, benchElements)
	r, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(4 * benchElements)
	for b.Loop() {
		if _, err := r.Float64s("w"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadFileBaseline(b *testing.B) {
	path := benchmarkFile(b, benchElements)
	b.SetBytes(4 * benchElements)
	for b.Loop() {
		if _, err := os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteFile(b *testing.B) {
	v := randomFloats[float32](rand.New(rand.NewPCG(1, 1)), benchElements)
	path := filepath.Join(b.TempDir(), "w.safetensors")
	b.SetBytes(4 * benchElements)
	for b.Loop() {
		if err := WriteFile(path, []Tensor{FromFloats("w", []int{benchElements}, v)}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFileBaseline: the bare cost of writing the same bytes
// durably (write, fsync, rename), for comparison with BenchmarkWriteFile.
func BenchmarkWriteFileBaseline(b *testing.B) {
	data := make([]byte, 4*benchElements)
	dir := b.TempDir()
	b.SetBytes(4 * benchElements)
	for b.Loop() {
		f, err := os.CreateTemp(dir, "tmp")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := os.Rename(f.Name(), filepath.Join(dir, "w")); err != nil {
			b.Fatal(err)
		}
	}
}
