package main

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/datasets/idx"
	"github.com/prism-lora/prism/datasets/mnist"
)

// subsetNames are the datasets the curve check uses: task A and task B.
var subsetNames = []string{"mnist", "fashion-mnist"}

// subsetManifest describes one written subset.
type subsetManifest struct {
	Name   string         `json:"name"`
	Source string         `json:"source"` // the full dataset's checksum
	Splits map[string]int `json:"splits"`
	SHA256 string         `json:"sha256"` // over the four files, in order
}

// subsetFiles are the four files of a subset in dir/name.
func subsetFiles(dir, name string) mnist.Files {
	d := filepath.Join(dir, name)
	return mnist.Files{
		TrainImages: filepath.Join(d, "train-images-idx3-ubyte.gz"),
		TrainLabels: filepath.Join(d, "train-labels-idx1-ubyte.gz"),
		TestImages:  filepath.Join(d, "t10k-images-idx3-ubyte.gz"),
		TestLabels:  filepath.Join(d, "t10k-labels-idx1-ubyte.gz"),
	}
}

func runData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ContinueOnError)
	out := fs.String("out", "", "folder to write the subsets to (one sub-folder per dataset)")
	trainA := fs.Int("train-a", 8192, "MNIST training images (task A)")
	trainB := fs.Int("train-b", 4096, "Fashion-MNIST training images (task B)")
	test := fs.Int("test", 1000, "test images of each")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	sizes := map[string]int{"mnist": *trainA, "fashion-mnist": *trainB}
	for _, name := range subsetNames {
		if err := writeSubset(context.Background(), *out, name, sizes[name], *test); err != nil {
			return err
		}
	}
	return nil
}

// writeSubset writes the first nTrain training and nTest test examples of
// the catalog dataset name as gzip idx files, with a manifest.
func writeSubset(ctx context.Context, dir, name string, nTrain, nTest int) error {
	d, err := catalog.Open(ctx, name)
	if err != nil {
		return err
	}
	m, ok := d.(datasets.InMemory)
	if !ok {
		return fmt.Errorf("dataset %s is not held in memory", name)
	}
	files := subsetFiles(dir, name)
	if err := os.MkdirAll(filepath.Dir(files.TrainImages), 0o755); err != nil {
		return err
	}
	man := subsetManifest{Name: name, Source: m.Spec().Checksum, Splits: map[string]int{}}
	for _, s := range []struct {
		split          string
		n              int
		images, labels string
	}{{datasets.Train, nTrain, files.TrainImages, files.TrainLabels}, {datasets.Test, nTest, files.TestImages, files.TestLabels}} {
		a, err := m.Arrays(s.split)
		if err != nil {
			return err
		}
		if s.n <= 0 || s.n > a.Size {
			return fmt.Errorf("%s %s: %d examples asked, the split has %d", name, s.split, s.n, a.Size)
		}
		side := mnist.Side
		pixels := make([]byte, s.n*side*side)
		for i := range pixels {
			v := math.Round(float64(a.Inputs[i]) * 255)
			if v < 0 || v > 255 || math.Abs(float64(a.Inputs[i])*255-v) > 1e-3 {
				return fmt.Errorf("%s %s: input %d is %v, not a byte/255", name, s.split, i, a.Inputs[i])
			}
			pixels[i] = byte(v)
		}
		labels := make([]byte, s.n)
		for i := range labels {
			labels[i] = byte(a.Labels[i])
		}
		if err := writeIdxGz(s.images, &idx.Array{Type: idx.Uint8, Dims: []int{s.n, side, side}, Data: pixels}); err != nil {
			return err
		}
		if err := writeIdxGz(s.labels, &idx.Array{Type: idx.Uint8, Dims: []int{s.n}, Data: labels}); err != nil {
			return err
		}
		man.Splits[s.split] = s.n
	}
	if man.SHA256, err = filesSHA256(files); err != nil {
		return err
	}
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name, "manifest.json"), append(b, '\n'), 0o644)
}

func writeIdxGz(path string, a *idx.Array) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err := idx.Write(zw, a); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func filesSHA256(f mnist.Files) (string, error) {
	h := sha256.New()
	for _, p := range []string{f.TrainImages, f.TrainLabels, f.TestImages, f.TestLabels} {
		r, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openSubsets returns a train.OpenDataset over the subsets in dir: the
// files are checked against their manifest, and the dataset's checksum is
// the files' hash (so cached models key on the exact examples).
func openSubsets(dir string) func(ctx context.Context, name string) (datasets.InMemory, error) {
	return func(_ context.Context, name string) (datasets.InMemory, error) {
		b, err := os.ReadFile(filepath.Join(dir, name, "manifest.json"))
		if err != nil {
			return nil, fmt.Errorf("subset %s: %w (write it with: gpu-check data -out %s)", name, err, dir)
		}
		var man subsetManifest
		if err := json.Unmarshal(b, &man); err != nil {
			return nil, fmt.Errorf("subset %s: manifest: %w", name, err)
		}
		files := subsetFiles(dir, name)
		sum, err := filesSHA256(files)
		if err != nil {
			return nil, err
		}
		if sum != man.SHA256 {
			return nil, fmt.Errorf("subset %s: files hash to %s, manifest says %s", name, sum, man.SHA256)
		}
		var spec datasets.Spec
		switch name {
		case "mnist":
			spec = mnist.MNISTSpec()
		case "fashion-mnist":
			spec = mnist.FashionSpec()
		default:
			return nil, fmt.Errorf("no subset %q (have %v)", name, subsetNames)
		}
		spec.Splits = []datasets.Split{{Name: datasets.Train, Size: man.Splits[datasets.Train]}, {Name: datasets.Test, Size: man.Splits[datasets.Test]}}
		spec.Checksum = man.SHA256
		return mnist.Load(spec, files)
	}
}
