// Package rundirtest writes real run directories for tests of the analysis:
// a small MLP pretrained on Fashion-MNIST classes 0–4 (the old task A) whose
// hidden layer is then fine-tuned on classes 5–9 (task B) with a window
// adapter initialised by core/lowrank, with a new head, by full-batch Adam.
// Everything a run stores — weights, SVD, probes, old-task logits before and
// after, checkpoints — comes from that computation.
package rundirtest

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/prism-lora/prism/core/analysis/rundir"
	"github.com/prism-lora/prism/core/lowrank"
	"gonum.org/v1/gonum/mat"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist installs the data
// (scripts/setup.sh data); $PRISM_FASHION_MNIST overrides it.
func FashionMNISTDir() string {
	if d := os.Getenv("PRISM_FASHION_MNIST"); d != "" {
		return d
	}
	return "/usr/share/datasets/fashion-mnist"
}

// EnvRequireData names the variable that turns a missing dataset from a
// skipped test into a failed one (CI sets it after scripts/setup.sh data).
const EnvRequireData = "PRISM_REQUIRE_DATA"

// LoadDataOrSkip is LoadData for tests: when the data is missing it skips
// t, or fails it when $PRISM_REQUIRE_DATA is 1.
func LoadDataOrSkip(t testing.TB) *Data {
	t.Helper()
	d, err := LoadData()
	if err == nil {
		return d
	}
	if errors.Is(err, fs.ErrNotExist) && os.Getenv(EnvRequireData) != "1" {
		t.Skipf("Fashion-MNIST not installed (scripts/setup.sh data): %v", err)
	}
	t.Fatal(err)
	return nil
}

// Sizes of the experiment: inputs are 14×14 (2×2 average-pooled), the
// hidden layer is Hidden×196, so it has min(Hidden, 196) = Hidden components.
const (
	Hidden         = 32
	Rank           = 4
	Inputs         = 196
	TrainPerTask   = 1000
	TestPerTask    = 500
	PretrainSteps  = 120
	FinetuneSteps  = 60
	CheckpointStep = 20
)

// task is a classification task's examples (rows of X) and labels 0…4.
type task struct {
	x      *mat.Dense
	labels []int
}

// Data holds the two tasks' train and test splits.
type Data struct {
	TrainA, TestA, TrainB task
}

// LoadData reads the Fashion-MNIST test set (10k images; enough here) and
// splits it: classes 0–4 are task A, 5–9 task B (labels shifted to 0–4);
// the first 8000 images feed training, the last 2000 testing.
func LoadData() (*Data, error) {
	dir := FashionMNISTDir()
	imgs, rows, cols, err := readIDX(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), 2051)
	if err != nil {
		return nil, err
	}
	labels, _, _, err := readIDX(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), 2049)
	if err != nil {
		return nil, err
	}
	n := len(labels)
	if rows != 28 || cols != 28 || len(imgs) != n*784 {
		return nil, fmt.Errorf("%s: unexpected image shape %d×%d for %d labels", dir, rows, cols, n)
	}
	d := &Data{}
	add := func(t *task, limit, i int, label int) {
		if len(t.labels) >= limit {
			return
		}
		row := make([]float64, Inputs)
		for y := 0; y < 14; y++ {
			for x := 0; x < 14; x++ {
				var s float64
				for dy := 0; dy < 2; dy++ {
					for dx := 0; dx < 2; dx++ {
						s += float64(imgs[i*784+(2*y+dy)*28+2*x+dx])
					}
				}
				row[y*14+x] = s / (4 * 255)
			}
		}
		if t.x == nil {
			t.x = mat.NewDense(limit, Inputs, nil)
		}
		t.x.SetRow(len(t.labels), row)
		t.labels = append(t.labels, label)
	}
	for i := 0; i < n; i++ {
		l := int(labels[i])
		switch {
		case i < 8000 && l < 5:
			add(&d.TrainA, TrainPerTask, i, l)
		case i < 8000:
			add(&d.TrainB, TrainPerTask, i, l-5)
		case l < 5:
			add(&d.TestA, TestPerTask, i, l)
		}
	}
	for _, t := range []*task{&d.TrainA, &d.TrainB, &d.TestA} {
		if t.x == nil {
			return nil, fmt.Errorf("%s: too few images", dir)
		}
		r, _ := t.x.Dims()
		if len(t.labels) < r {
			t.x = mat.DenseCopyOf(t.x.Slice(0, len(t.labels), 0, Inputs))
		}
	}
	return d, nil
}

// readIDX reads a gzipped IDX file with the given magic and returns its bytes
// and, for images, rows and columns.
func readIDX(path string, magic uint32) ([]byte, int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w (install Fashion-MNIST with scripts/setup.sh data)", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	data, err := io.ReadAll(z)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	be := binary.BigEndian
	if len(data) < 8 || be.Uint32(data) != magic {
		return nil, 0, 0, fmt.Errorf("%s: not an IDX file with magic %d", path, magic)
	}
	if magic == 2049 {
		return data[8:], 0, 0, nil
	}
	if len(data) < 16 {
		return nil, 0, 0, fmt.Errorf("%s: truncated header", path)
	}
	return data[16:], int(be.Uint32(data[8:])), int(be.Uint32(data[12:])), nil
}

// mlp is x → relu(x·W1ᵀ + b1) → ·W2ᵀ + b2.
type mlp struct {
	w1 *mat.Dense // Hidden×Inputs
	b1 []float64
	w2 *mat.Dense // 5×Hidden
	b2 []float64
}

// hidden returns Z = X·W1ᵀ + b1 and H = relu(Z).
func hidden(x, w1 *mat.Dense, b1 []float64) (z, h *mat.Dense) {
	z = new(mat.Dense)
	z.Mul(x, w1.T())
	r, c := z.Dims()
	h = mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			v := z.At(i, j) + b1[j]
			z.Set(i, j, v)
			h.Set(i, j, math.Max(v, 0))
		}
	}
	return z, h
}

// logits returns H·W2ᵀ + b2.
func logits(h, w2 *mat.Dense, b2 []float64) *mat.Dense {
	var out mat.Dense
	out.Mul(h, w2.T())
	r, c := out.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out.Set(i, j, out.At(i, j)+b2[j])
		}
	}
	return &out
}

// softmaxGrad returns dL/dlogits of the mean cross-entropy, (P − Y)/N.
func softmaxGrad(z *mat.Dense, labels []int) *mat.Dense {
	r, c := z.Dims()
	g := mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		row := z.RawRowView(i)
		top := math.Inf(-1)
		for _, v := range row {
			top = math.Max(top, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - top)
		}
		for j, v := range row {
			p := math.Exp(v-top) / s
			if j == labels[i] {
				p--
			}
			g.Set(i, j, p/float64(r))
		}
	}
	return g
}

// backward returns the gradients of the head and dL/dW1 (and dL/db1).
func backward(x, z, h, w2, dLogits *mat.Dense) (dW2 *mat.Dense, db2 []float64, dW1 *mat.Dense, db1 []float64) {
	dW2 = new(mat.Dense)
	dW2.Mul(dLogits.T(), h)
	db2 = colSums(dLogits)
	var dH mat.Dense
	dH.Mul(dLogits, w2)
	r, c := dH.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if z.At(i, j) <= 0 {
				dH.Set(i, j, 0)
			}
		}
	}
	dW1 = new(mat.Dense)
	dW1.Mul(dH.T(), x)
	return dW2, db2, dW1, colSums(&dH)
}

func colSums(a *mat.Dense) []float64 {
	r, c := a.Dims()
	s := make([]float64, c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			s[j] += a.At(i, j)
		}
	}
	return s
}

// adam updates parameters in place.
type adam struct {
	lr   float64
	t    int
	m, v [][]float64
}

func (a *adam) step(params, grads [][]float64) {
	if a.m == nil {
		for _, p := range params {
			a.m = append(a.m, make([]float64, len(p)))
			a.v = append(a.v, make([]float64, len(p)))
		}
	}
	a.t++
	const b1, b2, eps = 0.9, 0.999, 1e-8
	c1, c2 := 1-math.Pow(b1, float64(a.t)), 1-math.Pow(b2, float64(a.t))
	for k, p := range params {
		for i, g := range grads[k] {
			a.m[k][i] = b1*a.m[k][i] + (1-b1)*g
			a.v[k][i] = b2*a.v[k][i] + (1-b2)*g*g
			p[i] -= a.lr * (a.m[k][i] / c1) / (math.Sqrt(a.v[k][i]/c2) + eps)
		}
	}
}

func raw(d *mat.Dense) []float64 { return d.RawMatrix().Data }

// Pretrained is the task-A model.
type Pretrained struct {
	model mlp
	data  *Data
}

// Pretrain trains the MLP on task A (seeded, deterministic).
func Pretrain(d *Data) *Pretrained {
	rng := rand.New(rand.NewPCG(1, 2))
	m := mlp{w1: mat.NewDense(Hidden, Inputs, nil), b1: make([]float64, Hidden), w2: mat.NewDense(5, Hidden, nil), b2: make([]float64, 5)}
	for i := range raw(m.w1) {
		raw(m.w1)[i] = rng.NormFloat64() * math.Sqrt(2.0/Inputs)
	}
	for i := range raw(m.w2) {
		raw(m.w2)[i] = rng.NormFloat64() * math.Sqrt(1.0/Hidden)
	}
	opt := adam{lr: 0.01}
	for s := 0; s < PretrainSteps; s++ {
		z, h := hidden(d.TrainA.x, m.w1, m.b1)
		dl := softmaxGrad(logits(h, m.w2, m.b2), d.TrainA.labels)
		dW2, db2, dW1, db1 := backward(d.TrainA.x, z, h, m.w2, dl)
		opt.step([][]float64{raw(m.w1), m.b1, raw(m.w2), m.b2}, [][]float64{raw(dW1), db1, raw(dW2), db2})
	}
	return &Pretrained{model: m, data: d}
}

// oldTaskLogits returns the task-A logits of the test split with hidden
// weight w1 and the task-A head, as float32 row-major.
func (p *Pretrained) oldTaskLogits(w1 *mat.Dense) []float32 {
	_, h := hidden(p.data.TestA.x, w1, p.model.b1)
	z := logits(h, p.model.w2, p.model.b2)
	out := make([]float32, len(raw(z)))
	for i, v := range raw(z) {
		out[i] = float32(v)
	}
	return out
}

// WriteRun fine-tunes the pretrained hidden layer on task B with a window
// adapter (preset: pissa, mid, milora, or a lowrank window spec with method
// "window") and a new head, and writes the run into dir. The stored weights
// are float32, as a GPU run would store them.
func (p *Pretrained) WriteRun(dir, preset string, lr float64) error {
	w := lowrank.Matrix[float64]{Rows: Hidden, Cols: Inputs, Data: append([]float64(nil), raw(p.model.w1)...)}
	svd, err := lowrank.ThinSVD(w)
	if err != nil {
		return err
	}
	cfg := lowrank.Config{Method: preset, Rank: Rank, Alpha: 2 * Rank}
	ad, err := lowrank.InitFromSVD("hidden", w, svd, cfg)
	if err != nil {
		return err
	}
	a := mat.NewDense(Rank, Inputs, append([]float64(nil), ad.A.Data...))
	b := mat.NewDense(Hidden, Rank, append([]float64(nil), ad.B.Data...))
	base := mat.NewDense(Hidden, Inputs, ad.Base.Data)
	merged := func() *mat.Dense {
		var ba mat.Dense
		ba.Mul(b, a)
		ba.Scale(ad.Scale, &ba)
		ba.Add(&ba, base)
		return &ba
	}
	rng := rand.New(rand.NewPCG(3, 4))
	head := mat.NewDense(5, Hidden, nil)
	for i := range raw(head) {
		raw(head)[i] = rng.NormFloat64() * math.Sqrt(1.0/Hidden)
	}
	hb := make([]float64, 5)
	opt := adam{lr: lr}
	x := p.data.TrainB.x
	var ckpts []rundir.Checkpoint
	baseLogits := p.oldTaskLogits(p.model.w1)
	for s := 1; s <= FinetuneSteps; s++ {
		w1 := merged()
		z, h := hidden(x, w1, p.model.b1)
		dl := softmaxGrad(logits(h, head, hb), p.data.TrainB.labels)
		dHead, dhb, dW1, _ := backward(x, z, h, head, dl)
		// W = Wres + scale·B·A: dB = scale·dW·Aᵀ, dA = scale·Bᵀ·dW.
		var dB, dA mat.Dense
		dB.Mul(dW1, a.T())
		dB.Scale(ad.Scale, &dB)
		dA.Mul(b.T(), dW1)
		dA.Scale(ad.Scale, &dA)
		opt.step([][]float64{raw(a), raw(b), raw(head), hb}, [][]float64{raw(&dA), raw(&dB), raw(dHead), dhb})
		if s%CheckpointStep == 0 && s < FinetuneSteps {
			w1 := merged()
			c, err := rundir.WriteCheckpoint(dir, s, map[string]lowrank.Matrix[float32]{"hidden.weight": to32(w1)},
				&rundir.Eval{Classes: 5, Finetuned: p.oldTaskLogits(w1)})
			if err != nil {
				return err
			}
			ckpts = append(ckpts, c)
		}
	}
	w1 := merged()
	svd32 := lowrank.Factors[float32]{U: to32(mat.NewDense(Hidden, len(svd.S), svd.U.Data)), S: make([]float32, len(svd.S)),
		V: to32(mat.NewDense(Inputs, len(svd.S), svd.V.Data))}
	for i, s := range svd.S {
		svd32.S[i] = float32(s)
	}
	layer := rundir.LayerData[float32]{
		Layer:      rundir.Layer{Name: "hidden", Tensor: "hidden.weight", Window: &rundir.Window{Start: ad.Start, Rank: ad.Rank}},
		Pretrained: to32(p.model.w1),
		Finetuned:  to32(w1),
		SVD:        svd32,
		Probes:     to32(p.data.TestA.x),
	}
	m := rundir.Manifest{Name: preset, Method: preset, Checkpoints: ckpts}
	return rundir.Write(dir, m, []rundir.LayerData[float32]{layer}, &rundir.Eval{
		Labels: p.data.TestA.labels, Classes: 5, BaseLogits: baseLogits, Finetuned: p.oldTaskLogits(w1),
	})
}

func to32(d *mat.Dense) lowrank.Matrix[float32] {
	r, c := d.Dims()
	m := lowrank.NewMatrix[float32](r, c)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			m.Data[i*c+j] = float32(d.At(i, j))
		}
	}
	return m
}

// OldTaskAccuracy returns the pretrained model's task-A test accuracy.
func (p *Pretrained) OldTaskAccuracy() float64 {
	z := p.oldTaskLogits(p.model.w1)
	correct := 0
	for i, l := range p.data.TestA.labels {
		best := 0
		for c := 1; c < 5; c++ {
			if z[i*5+c] > z[i*5+best] {
				best = c
			}
		}
		if best == l {
			correct++
		}
	}
	return float64(correct) / float64(len(p.data.TestA.labels))
}
