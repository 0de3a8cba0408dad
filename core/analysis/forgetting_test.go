package analysis

import (
	"fmt"
	"math"
	"testing"
)

func TestLogSoftmaxIsStable(t *testing.T) {
	cases := []struct {
		logits []float64
		want   []float64
	}{
		{[]float64{1000, 1000}, []float64{-math.Ln2, -math.Ln2}},
		{[]float64{-1000, -1000, -1000, -1000}, []float64{-2 * math.Ln2, -2 * math.Ln2, -2 * math.Ln2, -2 * math.Ln2}},
		{[]float64{0, math.Log(3)}, []float64{-2 * math.Ln2, math.Log(0.75)}},
		{[]float64{800, 0}, []float64{0, -800}},
	}
	for _, c := range cases {
		got := LogSoftmax(nil, c.logits)
		for i := range got {
			if !near(got[i], c.want[i], 1e-12) {
				t.Errorf("LogSoftmax(%v) = %v, want %v", c.logits, got, c.want)
				break
			}
		}
	}
	f32 := LogSoftmax(nil, []float32{88, 88, 88}) // exp(88) overflows float32
	if !near(f32[0], -math.Log(3), 1e-12) {
		t.Errorf("float32 logits: %v", f32)
	}
}

func TestAccuracyAndDrop(t *testing.T) {
	logits := []float32{
		2, 1, 0, // → 0
		0, 3, 1, // → 1
		1, 1, 0, // tie → 0 (first)
		0, 0, 5, // → 2
	}
	acc, err := Accuracy(logits, 3, []int{0, 1, 1, 0})
	if err != nil || acc != 0.5 {
		t.Errorf("accuracy %v, %v; want 0.5", acc, err)
	}
	if d := AccuracyDrop(0.9875, 0.8125); !near(d, 17.5, 1e-12) {
		t.Errorf("drop %g points, want 17.5", d)
	}
	if _, err := Accuracy(logits, 3, []int{0, 1}); err == nil {
		t.Error("label count mismatch accepted")
	}
	if _, err := Accuracy(logits, 5, []int{0, 1}); err == nil {
		t.Error("ragged logits accepted")
	}
	if _, err := Accuracy(logits, 3, []int{0, 1, 3, 0}); err == nil {
		t.Error("label out of range accepted")
	}
}

// Hand computation: p = softmax(0, 0) = (½, ½), q = softmax(ln 3, 0) = (¾, ¼),
// KL(p‖q) = ½·ln(½/¾) + ½·ln(½/¼) = ½·ln(4/3).
func TestMeanKLAgainstHandComputation(t *testing.T) {
	base := []float64{0, 0, 5, 5}
	after := []float64{math.Log(3), 0, 5, 5}
	got, err := MeanKL(base, after, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.5 * (0.5 * math.Log(4.0/3)) // second example has KL 0
	if !near(got, want, 1e-15) {
		t.Errorf("mean KL %.17g, want %.17g", got, want)
	}
	// Shifting logits by a constant changes nothing; huge logits stay finite.
	shifted, _ := MeanKL([]float64{1000, 1000}, []float64{1000 + math.Log(3), 1000}, 2)
	if !near(shifted, 0.5*math.Log(4.0/3), 1e-12) {
		t.Errorf("shifted KL %g", shifted)
	}
	same, _ := MeanKL([]float32{1, 2, 3}, []float32{1, 2, 3}, 3)
	if same != 0 {
		t.Errorf("KL of identical logits %g", same)
	}
	// KL(p‖q) with q → 0 where p > 0 is large but finite for finite logits.
	big, _ := MeanKL([]float64{0, 0}, []float64{0, -700}, 2)
	if !near(big, 0.5*(math.Log(0.5)-0)+0.5*(math.Log(0.5)+700), 1e-9) {
		t.Errorf("KL against a near-zero probability: %g", big)
	}
	if _, err := MeanKL([]float64{0, 0}, []float64{0}, 2); err == nil {
		t.Error("length mismatch accepted")
	}
}

// Uniform logits over 4 symbols: cross-entropy ln 4 nats = 2 bits per character.
func TestCrossEntropyAndBitsPerCharacter(t *testing.T) {
	logits := make([]float32, 3*4)
	ce, err := CrossEntropy(logits, 4, []int{0, 3, 2})
	if err != nil || !near(ce, math.Log(4), 1e-15) {
		t.Errorf("cross-entropy %g, %v", ce, err)
	}
	bpc, err := BitsPerCharacter(logits, 4, []int{0, 3, 2})
	if err != nil || !near(bpc, 2, 1e-15) {
		t.Errorf("bpc %g, %v", bpc, err)
	}
	// p(target) = ¾ at one position, ¼ at the other: mean −log₂ = (log₂(4/3) + 2)/2.
	bpc, _ = BitsPerCharacter([]float64{math.Log(3), 0, math.Log(3), 0}, 2, []int{0, 1})
	if want := (math.Log2(4.0/3) + 2) / 2; !near(bpc, want, 1e-15) {
		t.Errorf("bpc %g, want %g", bpc, want)
	}
	if _, err := CrossEntropy(logits, 4, []int{0, 4, 1}); err == nil {
		t.Error("target out of range accepted")
	}
}

func TestForgettingTrajectory(t *testing.T) {
	base := []float64{2, 0, 0, 2} // both right
	labels := []int{0, 1}
	ckpt := [][]float64{
		{2, 0, 0, 2}, // unchanged
		{2, 0, 2, 0}, // second example now wrong
	}
	tr, err := ForgettingTrajectory(base, labels, 2, []int{0, 100}, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if tr[0].Accuracy != 1 || tr[0].AccuracyDrop != 0 || tr[0].MeanKL != 0 {
		t.Errorf("step 0: %+v", tr[0])
	}
	// Second example: p = σ(−2, 2)… KL(p‖q) with p = (1−a, a), q = (a, 1−a), a = 1/(1+e²)... computed directly:
	a := 1 / (1 + math.Exp(2))
	kl := (1-a)*math.Log((1-a)/a) + a*math.Log(a/(1-a))
	if tr[1].Step != 100 || tr[1].Accuracy != 0.5 || tr[1].AccuracyDrop != 50 || !near(tr[1].MeanKL, kl/2, 1e-14) {
		t.Errorf("step 100: %+v, want accuracy 0.5, drop 50, KL %g", tr[1], kl/2)
	}
	if _, err := ForgettingTrajectory(base, labels, 2, []int{0}, ckpt); err == nil {
		t.Error("step/checkpoint count mismatch accepted")
	}
}

// A three-task sequence computed by hand:
//
//	R = [[0.90,  —,    —  ],
//	     [0.80, 0.85,  —  ],
//	     [0.70, 0.75, 0.95]]
//
// ACC₂ = (0.70+0.75+0.95)/3 = 0.8; BWT₂ = ((0.70−0.90)+(0.75−0.85))/2 = −0.15;
// forgetting₂ = (max(0.90, 0.80) − 0.70, 0.85 − 0.75) = (0.2, 0.1).
func TestContinualMetricsAgainstHandComputation(t *testing.T) {
	nan := math.NaN()
	r := AccuracyMatrix{{0.90, nan, nan}, {0.80, 0.85, nan}, {0.70, 0.75, 0.95}}
	acc, _ := r.AverageAccuracy(2)
	bwt, _ := r.BackwardTransfer(2)
	f, _ := r.Forgetting(2)
	if !near(acc, 0.8, 1e-15) || !near(bwt, -0.15, 1e-15) || len(f) != 2 || !near(f[0], 0.2, 1e-15) || !near(f[1], 0.1, 1e-15) {
		t.Errorf("ACC %g BWT %g forgetting %v", acc, bwt, f)
	}
	tr, err := r.Trajectory()
	if err != nil {
		t.Fatal(err)
	}
	want := []StageSummary{{0, 0.9, 0, 0}, {1, 0.825, -0.1, 0.1}, {2, 0.8, -0.15, 0.15}}
	for k := range want {
		g := tr[k]
		if g.Stage != want[k].Stage || !near(g.AverageAccuracy, want[k].AverageAccuracy, 1e-15) ||
			!near(g.BackwardTransfer, want[k].BackwardTransfer, 1e-15) || !near(g.MeanForgetting, want[k].MeanForgetting, 1e-15) {
			t.Errorf("stage %d: %+v, want %+v", k, g, want[k])
		}
	}
	if _, err := r.ForwardTransfer([]float64{0.1, 0.1, 0.1}); err == nil {
		t.Error("forward transfer without the entries above the diagonal accepted")
	}
	full := AccuracyMatrix{{0.9, 0.2, 0.15}, {0.8, 0.85, 0.3}, {0.7, 0.75, 0.95}}
	fwt, err := full.ForwardTransfer([]float64{0.1, 0.1, 0.1})
	if err != nil || !near(fwt, ((0.2-0.1)+(0.3-0.1))/2, 1e-15) {
		t.Errorf("FWT %g, %v", fwt, err)
	}
	if err := (AccuracyMatrix{{0.9, 0.1}, {nan, 0.8}}).Check(); err == nil {
		t.Error("NaN below the diagonal accepted")
	}
	if _, err := r.AverageAccuracy(3); err == nil {
		t.Error("stage out of range accepted")
	}
}

func ExampleMeanKL() {
	// Two old-task examples, two classes. The base model is unsure about the
	// first and sure about the second; after fine-tuning it leans to class 0
	// on the first.
	base := []float64{0, 0, 4, -4}
	after := []float64{math.Log(3), 0, 4, -4}
	kl, _ := MeanKL(base, after, 2)
	fmt.Printf("mean KL = %.6f nats (= ½·½·ln(4/3))\n", kl)
	// Output:
	// mean KL = 0.071921 nats (= ½·½·ln(4/3))
}

func ExampleAccuracyMatrix_BackwardTransfer() {
	nan := math.NaN()
	r := AccuracyMatrix{
		{0.90, nan, nan},
		{0.80, 0.85, nan},
		{0.70, 0.75, 0.95},
	}
	acc, _ := r.AverageAccuracy(2)
	bwt, _ := r.BackwardTransfer(2)
	f, _ := r.Forgetting(2)
	fmt.Printf("ACC %.2f  BWT %+.2f  forgetting %.2f\n", acc, bwt, f)
	// Output:
	// ACC 0.80  BWT -0.15  forgetting [0.20 0.10]
}
