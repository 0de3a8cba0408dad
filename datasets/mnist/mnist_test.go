package mnist_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/datasets/idx"
	"github.com/prism-lora/prism/datasets/mnist"
)

// The reference values below were computed independently with numpy from
// the same files (np.frombuffer of the idx data, np.bincount of labels).
type reference struct {
	name             string
	firstLabels      []int32
	trainCounts      [10]int
	testCounts       [10]int
	firstImageSum    int // Σ bytes of training image 0
	centrePixel      byte
	lastTestSum      int // Σ bytes of the last test image
	lastTestLabel    int32
	meanTrainPixel   float64
	classes          []string
	wantDescription  string
	firstClassString string
}

var references = []reference{
	{
		name:          "mnist",
		firstLabels:   []int32{5, 0, 4, 1, 9, 2, 1, 3, 1, 4},
		trainCounts:   [10]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949},
		testCounts:    [10]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009},
		firstImageSum: 27525, centrePixel: 240, lastTestSum: 41833, lastTestLabel: 6,
		meanTrainPixel: 0.13066047740240996,
		classes:        mnist.Digits, firstClassString: "5",
	},
	{
		name:          "fashion-mnist",
		firstLabels:   []int32{9, 0, 0, 3, 0, 2, 7, 2, 5, 5},
		trainCounts:   [10]int{6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000},
		testCounts:    [10]int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
		firstImageSum: 76247, centrePixel: 217, lastTestSum: 24390, lastTestLabel: 5,
		meanTrainPixel: 0.2860406021939525,
		classes:        mnist.FashionClasses, firstClassString: "Ankle boot",
	},
}

func TestRealDatasets(t *testing.T) {
	for _, ref := range references {
		t.Run(ref.name, func(t *testing.T) {
			d := catalogtest.Open(t, ref.name)
			spec := d.Spec()
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			if n, _ := spec.SplitSize("train"); n != 60000 {
				t.Errorf("train size %d", n)
			}
			if n, _ := spec.SplitSize("test"); n != 10000 {
				t.Errorf("test size %d", n)
			}
			if len(spec.ExampleShape) != 3 || spec.ExampleSize() != 784 || spec.NumClasses() != 10 || spec.Checksum == "" {
				t.Errorf("spec %+v", spec)
			}
			train, err := d.Arrays("train")
			if err != nil {
				t.Fatal(err)
			}
			test, err := d.Arrays("test")
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range ref.firstLabels {
				if train.Labels[i] != want {
					t.Fatalf("train labels start %v, want %v", train.Labels[:10], ref.firstLabels)
				}
			}
			if got := spec.Classes[train.Labels[0]]; got != ref.firstClassString {
				t.Errorf("first training example is a %q, want %q", got, ref.firstClassString)
			}
			var trainCounts, testCounts [10]int
			for _, y := range train.Labels {
				trainCounts[y]++
			}
			for _, y := range test.Labels {
				testCounts[y]++
			}
			if trainCounts != ref.trainCounts || testCounts != ref.testCounts {
				t.Errorf("class counts train %v test %v, want %v and %v", trainCounts, testCounts, ref.trainCounts, ref.testCounts)
			}
			// Pixels are byte/255: the byte sum comes back exactly.
			sumBytes := func(x []float32) int {
				s := 0
				for _, v := range x {
					s += int(v*255 + 0.5)
					if v < 0 || v > 1 {
						t.Fatalf("pixel %v outside [0, 1]", v)
					}
				}
				return s
			}
			if s := sumBytes(train.Inputs[:784]); s != ref.firstImageSum {
				t.Errorf("first training image sums to %d bytes, want %d", s, ref.firstImageSum)
			}
			if p := train.Inputs[14*28+14]; p != float32(ref.centrePixel)/255 {
				t.Errorf("pixel (14,14) of image 0 = %v, want %d/255", p, ref.centrePixel)
			}
			if s := sumBytes(test.Inputs[len(test.Inputs)-784:]); s != ref.lastTestSum || test.Labels[9999] != ref.lastTestLabel {
				t.Errorf("last test image: sum %d label %d, want %d and %d", s, test.Labels[9999], ref.lastTestSum, ref.lastTestLabel)
			}
			mean := 0.0
			for _, v := range train.Inputs {
				mean += float64(v)
			}
			mean /= float64(len(train.Inputs))
			if d := mean - ref.meanTrainPixel; d > 1e-9 || d < -1e-9 {
				t.Errorf("mean training pixel %.12f, want %.12f", mean, ref.meanTrainPixel)
			}
		})
	}
}

// Batches from the real MNIST: shuffled, sharded training batches carry the
// examples their indices name.
func TestRealMNISTBatches(t *testing.T) {
	d := catalogtest.Open(t, "mnist")
	train, _ := d.Arrays("train")
	it, err := d.Batches(context.Background(), datasets.BatchOptions{Split: "train", BatchSize: 128, Shuffle: true, Seed: 3, Shard: 1, NumShards: 2, DropLast: true})
	if err != nil {
		t.Fatal(err)
	}
	if it.NumBatches() != 30000/128 {
		t.Fatalf("NumBatches %d, want %d", it.NumBatches(), 30000/128)
	}
	var b datasets.Batch
	n := 0
	for {
		err := it.Next(&b)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for j, i := range b.Indices {
			if b.Labels[j] != train.Labels[i] || b.Inputs[j*784+400] != train.Inputs[int(i)*784+400] {
				t.Fatalf("batch %d example %d does not match training example %d", n, j, i)
			}
		}
		n++
	}
	if n != 234 {
		t.Errorf("%d batches, want 234", n)
	}
}

// Load rejects files that do not have MNIST's layout, naming the file.
func TestLoadRejectsWrongFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, a *idx.Array, compress bool) string {
		var buf bytes.Buffer
		if err := idx.Write(&buf, a); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if compress {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(b)
			zw.Close()
			b = z.Bytes()
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	spec := mnist.MNISTSpec()
	spec.Splits = []datasets.Split{{Name: "train", Size: 3}, {Name: "test", Size: 2}}
	img := func(n, side int) *idx.Array {
		return &idx.Array{Type: idx.Uint8, Dims: []int{n, side, side}, Data: make([]byte, n*side*side)}
	}
	lab := func(vals ...byte) *idx.Array { return &idx.Array{Type: idx.Uint8, Dims: []int{len(vals)}, Data: vals} }
	good := mnist.Files{
		TrainImages: write("ti", img(3, 28), true), TrainLabels: write("tl", lab(1, 2, 3), false),
		TestImages: write("si", img(2, 28), false), TestLabels: write("sl", lab(0, 9), true),
	}
	d, err := mnist.Load(spec, good)
	if err != nil {
		t.Fatalf("small valid files: %v", err)
	}
	if a, _ := d.Arrays("train"); a.Labels[2] != 3 {
		t.Errorf("labels %v", a.Labels)
	}
	for _, c := range []struct {
		name  string
		files func(f mnist.Files) mnist.Files
		want  string
	}{
		{"images 27×27", func(f mnist.Files) mnist.Files { f.TrainImages = write("small", img(3, 27), false); return f }, "dims[1]: expected 28"},
		{"too few test images", func(f mnist.Files) mnist.Files { f.TestImages = write("few", img(1, 28), false); return f }, "dims[0]: expected 2"},
		{"label 10", func(f mnist.Files) mnist.Files { f.TestLabels = write("ten", lab(0, 10), false); return f }, "label 1 is 10"},
		{"labels swapped with images", func(f mnist.Files) mnist.Files { f.TrainLabels = f.TrainImages; return f }, "dimensions: expected 1 dimensions"},
		{"missing", func(f mnist.Files) mnist.Files { f.TestImages = filepath.Join(dir, "nope"); return f }, "no such file"},
	} {
		_, err := mnist.Load(spec, c.files(good))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: got %v, want an error naming the file and %q", c.name, err, c.want)
		}
	}
}
