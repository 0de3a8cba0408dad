// Package mnist loads datasets stored in MNIST's layout — four idx files,
// train/test images (N×28×28 uint8) and labels (N uint8) — which covers
// MNIST itself and Fashion-MNIST. Files may be raw or gzip-compressed.
//
// Pixels become float32 x = byte/255, so 0 ↦ 0 and 255 ↦ 1 exactly; an
// example has shape [28, 28, 1] (height, width, channels), row-major.
package mnist

import (
	"fmt"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
	"github.com/prism-lora/prism/datasets/idx"
)

// Side is the height and width of an image in pixels.
const Side = 28

// PixelScale is how stored bytes become inputs.
const PixelScale = "x = byte/255 (0 ↦ 0, 255 ↦ 1)"

// Files are the paths of the four idx files.
type Files struct {
	TrainImages, TrainLabels, TestImages, TestLabels string
}

// Digits are MNIST's class names: label k is the digit k.
var Digits = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// FashionClasses are Fashion-MNIST's class names, label k ↦ FashionClasses[k]
// (Xiao, Rasul & Vollgraf 2017).
var FashionClasses = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

func spec(name, description string, classes []string) datasets.Spec {
	return datasets.Spec{
		Name:         name,
		Description:  description,
		Task:         datasets.Classification,
		Splits:       []datasets.Split{{Name: datasets.Train, Size: 60000}, {Name: datasets.Test, Size: 10000}},
		ExampleShape: []int{Side, Side, 1},
		DType:        datasets.Float32,
		Classes:      append([]string(nil), classes...),
		PadToken:     -1,
		PixelScale:   PixelScale,
	}
}

// MNISTSpec describes MNIST: 60,000 training and 10,000 test images of
// handwritten digits, 10 classes.
func MNISTSpec() datasets.Spec {
	return spec("mnist", "MNIST handwritten digits (LeCun et al. 1998), 28×28 grey, 10 classes", Digits)
}

// FashionSpec describes Fashion-MNIST: 60,000 training and 10,000 test
// images of clothing, 10 classes.
func FashionSpec() datasets.Spec {
	return spec("fashion-mnist", "Fashion-MNIST Zalando article images (Xiao et al. 2017), 28×28 grey, 10 classes", FashionClasses)
}

// Load reads the four files and returns the dataset described by spec,
// whose split sizes, 28×28×1 shape and class count the files must match.
// Every error names the file and what was expected.
func Load(spec datasets.Spec, f Files) (*dense.Dataset, error) {
	train, err := loadSplit(spec, datasets.Train, f.TrainImages, f.TrainLabels)
	if err != nil {
		return nil, err
	}
	test, err := loadSplit(spec, datasets.Test, f.TestImages, f.TestLabels)
	if err != nil {
		return nil, err
	}
	return dense.New(spec, train, test)
}

// pixelTable maps a byte to its float32 input value b/255.
var pixelTable = func() (t [256]float32) {
	for b := range t {
		t[b] = float32(b) / 255
	}
	return t
}()

func loadSplit(spec datasets.Spec, split, imagesPath, labelsPath string) (dense.Split, error) {
	n, ok := spec.SplitSize(split)
	if !ok {
		return dense.Split{}, fmt.Errorf("dataset %q: spec has no split %q", spec.Name, split)
	}
	images, err := idx.ReadFile(imagesPath, &idx.Want{Type: idx.Uint8, Dims: []int{n, Side, Side}})
	if err != nil {
		return dense.Split{}, fmt.Errorf("%s %s images: %w", spec.Name, split, err)
	}
	labels, err := idx.ReadFile(labelsPath, &idx.Want{Type: idx.Uint8, Dims: []int{n}})
	if err != nil {
		return dense.Split{}, fmt.Errorf("%s %s labels: %w", spec.Name, split, err)
	}
	s := dense.Split{Name: split, Inputs: make([]float32, len(images.Data)), Labels: make([]int32, n)}
	for i, b := range images.Data {
		s.Inputs[i] = pixelTable[b]
	}
	for i, b := range labels.Data {
		if int(b) >= spec.NumClasses() {
			return dense.Split{}, fmt.Errorf("idx file %s: label %d is %d, expected a class in [0, %d)", labelsPath, i, b, spec.NumClasses())
		}
		s.Labels[i] = int32(b)
	}
	return s, nil
}
