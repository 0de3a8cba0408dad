package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
)

// Derived tasks. Besides the catalog's datasets, a task of a continual
// sequence may be a dataset of images with one fixed transformation applied
// to every image of every split (labels unchanged), named BASE/TRANSFORM:
//
//	BASE/rot90        rotated 90° counter-clockwise (numpy's rot90):   out[i][j] = in[j][S−1−i]
//	BASE/rot180       rotated 180°:                                    out[i][j] = in[S−1−i][S−1−j]
//	BASE/rot270       rotated 90° clockwise:                           out[i][j] = in[S−1−j][i]
//	BASE/transpose    mirrored on the main diagonal:                   out[i][j] = in[j][i]
//	BASE/permute-SEED one fixed permutation P of the H·W pixel positions,
//	                  P = dense.Permutation(H·W, SEED):                out[p] = in[P[p]]
//
// for S×S (rotations, transpose) or H×W (permutation) images, every channel
// alike. These are the derived tasks of the continual-learning literature:
// rotated and permuted MNIST are two of the three benchmarks of GEM
// (Lopez-Paz & Ranzato 2017). A derived dataset's Checksum is the SHA-256 of
// its base's checksum and the transform (empty when the base has none).

// TaskTransforms lists the transforms of derived task names.
var TaskTransforms = []string{"rot90", "rot180", "rot270", "transpose", "permute-SEED"}

// derivedVersion is part of a derived dataset's checksum: bump it when a
// transform's definition changes.
const derivedVersion = 1

// SplitTaskName splits "BASE/TRANSFORM" into its parts; a plain dataset name
// has no transform.
func SplitTaskName(name string) (base, transform string) {
	base, transform, _ = strings.Cut(name, "/")
	return base, transform
}

// pixelMap returns, for an h×w image, the source position of every output
// position (out[p] = in[src[p]]), or an error naming the task.
func pixelMap(task, transform string, h, w int) ([]int, error) {
	square := func() error {
		if h != w {
			return fmt.Errorf("task %s: transform %s needs square images, the examples are %d×%d", task, transform, h, w)
		}
		return nil
	}
	src := make([]int, h*w)
	switch {
	case transform == "rot90", transform == "rot180", transform == "rot270", transform == "transpose":
		if err := square(); err != nil {
			return nil, err
		}
		s := h
		for i := 0; i < s; i++ {
			for j := 0; j < s; j++ {
				var si, sj int
				switch transform {
				case "rot90":
					si, sj = j, s-1-i
				case "rot180":
					si, sj = s-1-i, s-1-j
				case "rot270":
					si, sj = s-1-j, i
				case "transpose":
					si, sj = j, i
				}
				src[i*s+j] = si*s + sj
			}
		}
	case strings.HasPrefix(transform, "permute-"):
		seed, err := strconv.ParseUint(strings.TrimPrefix(transform, "permute-"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("task %s: transform %q: expected permute-SEED with SEED a non-negative integer", task, transform)
		}
		for p, q := range dense.Permutation(h*w, seed) {
			src[p] = int(q)
		}
	default:
		return nil, fmt.Errorf("task %s: unknown transform %q (expected one of %s)", task, transform, strings.Join(TaskTransforms, ", "))
	}
	return src, nil
}

// OpenTask opens a task by name with open: a dataset name as it is, or
// BASE/TRANSFORM as the base dataset with the transform applied to every
// image of every split (see TaskTransforms). The derived dataset is named
// like the task and holds new arrays (the base's are not modified).
func OpenTask(ctx context.Context, name string, open OpenDataset) (datasets.InMemory, error) {
	base, transform := SplitTaskName(name)
	if base == "" {
		return nil, fmt.Errorf("task %q: no dataset name before the transform", name)
	}
	if open == nil {
		open = openCatalog
	}
	d, err := open(ctx, base)
	if err != nil || transform == "" {
		return d, err
	}
	spec := d.Spec()
	if spec.DType != datasets.Float32 || len(spec.ExampleShape) != 3 {
		return nil, fmt.Errorf("task %s: dataset %s has %s examples of shape %v; transforms apply to images [H, W, C]", name, base, spec.DType, spec.ExampleShape)
	}
	h, w, c := spec.ExampleShape[0], spec.ExampleShape[1], spec.ExampleShape[2]
	src, err := pixelMap(name, transform, h, w)
	if err != nil {
		return nil, err
	}
	size := h * w * c
	var splits []dense.Split
	for _, sp := range spec.Splits {
		a, err := d.Arrays(sp.Name)
		if err != nil {
			return nil, err
		}
		in := make([]float32, len(a.Inputs))
		for n := 0; n < a.Size; n++ {
			img, out := a.Inputs[n*size:(n+1)*size], in[n*size:(n+1)*size]
			for p, q := range src {
				for ch := 0; ch < c; ch++ {
					out[p*c+ch] = img[q*c+ch]
				}
			}
		}
		splits = append(splits, dense.Split{Name: sp.Name, Inputs: in, Labels: a.Labels})
	}
	spec.Name = name
	spec.Description = fmt.Sprintf("%s with the transform %s applied to every image", spec.Description, transform)
	if spec.Checksum != "" {
		h := sha256.New()
		fmt.Fprintf(h, "prism-derived-task %d\n%s\n%s\n", derivedVersion, spec.Checksum, transform)
		spec.Checksum = hex.EncodeToString(h.Sum(nil))
	}
	return dense.New(spec, splits...)
}
