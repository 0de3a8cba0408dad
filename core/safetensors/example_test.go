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
