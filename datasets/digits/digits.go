// Package digits loads scikit-learn's optical-recognition digits (the UCI
// "Optical Recognition of Handwritten Digits" test set, 1,797 images of 8×8
// pixels with 17 grey levels) from sklearn's digits.csv.gz: one row per
// image, 64 pixel values 0…16 and the digit, comma-separated.
//
// It is prism's tiny real fixture for fast tests. The split is fixed,
// deterministic and stratified: walking the file in order, the k-th image
// of each digit (k = 0, 1, …) goes to "test" when k mod 5 = 4 and to
// "train" otherwise — 1,442 train and 355 test images, every class 20% in
// test (34–36 images each). Both splits keep file order. Pixels become
// float32 x = v/16 ∈ [0, 1]; an example has shape [8, 8, 1].
package digits

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
)

const (
	// Side is the height and width of an image.
	Side = 8
	// Levels is the number of grey levels: pixels are 0…Levels−1.
	Levels = 17
	// Total is the number of images in the file.
	Total = 1797
	// TrainSize and TestSize are the sizes of the fixed split.
	TrainSize = 1442
	TestSize  = 355
)

// IsTest reports whether the k-th image (0-based) of one digit, counted in
// file order, belongs to the test split.
func IsTest(k int) bool { return k%5 == 4 }

// Spec describes the digits dataset.
func Spec() datasets.Spec {
	return datasets.Spec{
		Name:         "digits",
		Description:  "scikit-learn digits (UCI optdigits test set), 8×8 grey with 17 levels, 10 classes; tiny fixture",
		Task:         datasets.Classification,
		Splits:       []datasets.Split{{Name: datasets.Train, Size: TrainSize}, {Name: datasets.Test, Size: TestSize}},
		ExampleShape: []int{Side, Side, 1},
		DType:        datasets.Float32,
		Classes:      []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		PadToken:     -1,
		PixelScale:   "x = v/16 (0 ↦ 0, 16 ↦ 1)",
	}
}

// Load reads digits.csv.gz (or the uncompressed CSV) at path and returns
// the dataset described by spec (normally Spec(), perhaps with a Checksum).
// A malformed row gives an error naming the file, line and field.
func Load(spec datasets.Spec, path string) (*dense.Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("digits: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("digits file %s: gzip header: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	const e = Side * Side
	train := dense.Split{Name: datasets.Train, Inputs: make([]float32, 0, TrainSize*e), Labels: make([]int32, 0, TrainSize)}
	test := dense.Split{Name: datasets.Test, Inputs: make([]float32, 0, TestSize*e), Labels: make([]int32, 0, TestSize)}
	sc := bufio.NewScanner(r)
	row := 0
	var seen [10]int // images of each digit so far
	pixels := make([]float32, e)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if row >= Total {
			return nil, fmt.Errorf("digits file %s: line %d: expected %d rows, found more", path, row+1, Total)
		}
		fields := bytes.Split(line, []byte(","))
		if len(fields) != e+1 {
			return nil, fmt.Errorf("digits file %s: line %d: expected %d comma-separated values, found %d", path, row+1, e+1, len(fields))
		}
		var label int
		for k, field := range fields {
			v, err := strconv.ParseFloat(string(bytes.TrimSpace(field)), 64)
			if err != nil || v != float64(int(v)) {
				return nil, fmt.Errorf("digits file %s: line %d field %d: expected an integer, found %q", path, row+1, k+1, field)
			}
			if k < e {
				if v < 0 || v >= Levels {
					return nil, fmt.Errorf("digits file %s: line %d pixel %d: expected 0…%d, found %v", path, row+1, k, Levels-1, v)
				}
				pixels[k] = float32(v) / (Levels - 1)
			} else {
				if v < 0 || v > 9 {
					return nil, fmt.Errorf("digits file %s: line %d: expected a digit label 0…9, found %v", path, row+1, v)
				}
				label = int(v)
			}
		}
		dst := &train
		if IsTest(seen[label]) {
			dst = &test
		}
		seen[label]++
		dst.Inputs = append(dst.Inputs, pixels...)
		dst.Labels = append(dst.Labels, int32(label))
		row++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("digits file %s: after %d rows: %w", path, row, err)
	}
	if row != Total {
		return nil, fmt.Errorf("digits file %s: expected %d rows, found %d (truncated?)", path, Total, row)
	}
	return dense.New(spec, train, test)
}
