package safetensors_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/prism-lora/prism/core/safetensors"
)

func Example() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	// Write two tensors and some metadata (atomically).
	err = safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.FromFloats("encoder.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		safetensors.FromFloats("encoder.bias", []int{2}, []float64{0.5, -0.5}),
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}

	// Open reads only the header; tensors are read one at a time.
	r, err := safetensors.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for _, t := range r.Tensors() {
		fmt.Printf("%s %s %v at [%d,%d)\n", t.Name, t.DType, t.Shape, t.Begin, t.End)
	}
	w, err := r.Float64s("encoder.weight") // F32 widened exactly
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w, r.Metadata())
	// Output:
	// encoder.bias F64 [2] at [0,16)
	// encoder.weight F32 [2 3] at [16,40)
	// [1 2 3 4 5 6] map[format:pt]
}

func ExampleOpen_corrupt() {
	path := filepath.Join(os.TempDir(), "corrupt-example.safetensors")
	defer os.Remove(path)
	header := `{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`
	content := append([]byte{byte(len(header)), 0, 0, 0, 0, 0, 0, 0}, header...)
	content = append(content, make([]byte, 8)...) // only half of w's data
	if err := os.WriteFile(path, content, 0o644); err != nil {
		log.Fatal(err)
	}
	_, err := safetensors.Open(path)
	fmt.Println(err != nil)
	var fe *safetensors.FormatError
	if errors.As(err, &fe) {
		fmt.Printf("tensor %q: %s\n", fe.Tensor, fe.Problem)
	}
	// Output:
	// true
	// tensor "w": data_offsets [0, 16] run past the end of the data section (8 bytes): file truncated?
}

// Create fixes the layout up front, so tensors can be produced one at a time
// (in any order, from several goroutines) and written straight to their
// place in the file; nothing appears at the path until Commit.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "safetensors-create")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "big.safetensors")
	specs := []safetensors.Spec{
		{Name: "layer.0", DType: safetensors.F32, Shape: []int{2, 2}},
		{Name: "layer.1", DType: safetensors.F32, Shape: []int{2, 2}},
	}
	fw, err := safetensors.Create(path, specs, map[string]string{"note": "streamed"})
	if err != nil {
		log.Fatal(err)
	}
	defer fw.Abort() // removes the temporary file unless Commit succeeded
	for i := len(specs) - 1; i >= 0; i-- {
		values := []float32{float32(i), 1, 2, 3}
		if err := fw.Put(safetensors.FromFloats(specs[i].Name, specs[i].Shape, values)); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := os.Stat(path); os.IsNotExist(err) {
		fmt.Println("not visible before Commit")
	}
	if err := fw.Commit(); err != nil {
		log.Fatal(err)
	}
	r, err := safetensors.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	v, _ := r.Float32s("layer.1")
	fmt.Println(r.Names(), v)
	// Output:
	// not visible before Commit
	// [layer.0 layer.1] [1 1 2 3]
}
