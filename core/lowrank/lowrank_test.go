package lowrank_test

import (
	"cmp"
	"fmt"
	"math"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/lowrank/lowranktest"
)

// backends lists the SVD back-ends compiled in: gonum always, LAPACK with cgo.
func backends() []lowrank.SVDBackend {
	if lowrank.LAPACKAvailable() {
		return []lowrank.SVDBackend{lowrank.BackendLAPACK, lowrank.BackendGonum}
	}
	return []lowrank.SVDBackend{lowrank.BackendGonum}
}

const (
	tol64 = 1e-12
	tol32 = 1e-5
)

func TestThinSVD(t *testing.T) {
	for _, b := range backends() {
		t.Run(string(b)+"/float64", func(t *testing.T) {
			lowranktest.CheckSVD(t, func(w lowrank.Matrix[float64]) (lowrank.Factors[float64], error) {
				return lowrank.ThinSVDWith(w, b)
			}, tol64)
		})
		t.Run(string(b)+"/float32", func(t *testing.T) {
			lowranktest.CheckSVD(t, func(w lowrank.Matrix[float32]) (lowrank.Factors[float32], error) {
				return lowrank.ThinSVDWith(w, b)
			}, tol32)
		})
	}
}

func TestWindowSVD(t *testing.T) {
	for _, b := range backends() {
		t.Run(string(b)+"/float64", func(t *testing.T) {
			lowranktest.CheckWindowSVD(t, func(w lowrank.Matrix[float64], s, r int) (lowrank.Factors[float64], error) {
				return lowrank.WindowSVD(w, s, r, b)
			}, tol64)
		})
		t.Run(string(b)+"/float32", func(t *testing.T) {
			lowranktest.CheckWindowSVD(t, func(w lowrank.Matrix[float32], s, r int) (lowrank.Factors[float32], error) {
				return lowrank.WindowSVD(w, s, r, b)
			}, tol32)
		})
	}
}

func TestRandomizedSVD(t *testing.T) {
	for _, b := range backends() {
		for _, algo := range []string{lowrank.RandomizedKrylov, lowrank.RandomizedSubspace} {
			o := lowrank.RandomizedOptions{Algorithm: algo, Seed: 1, Backend: b}
			t.Run(string(b)+"/"+algo+"/float64", func(t *testing.T) {
				lowranktest.CheckTruncatedSVD(t, func(w lowrank.Matrix[float64], q int) (lowrank.Factors[float64], error) {
					return lowrank.RandomizedSVD(w, q, o)
				}, 1e-3)
			})
			t.Run(string(b)+"/"+algo+"/float32", func(t *testing.T) {
				lowranktest.CheckTruncatedSVD(t, func(w lowrank.Matrix[float32], q int) (lowrank.Factors[float32], error) {
					return lowrank.RandomizedSVD(w, q, o)
				}, 1e-3)
			})
		}
	}
}

func initWith[T lowrank.Float](b lowrank.SVDBackend) lowranktest.InitFunc[T] {
	return func(layer string, w lowrank.Matrix[T], c lowrank.Config) (lowrank.Adapter[T], error) {
		c.Backend = b
		return lowrank.Init(layer, w, c)
	}
}

func TestInit(t *testing.T) {
	for _, b := range backends() {
		t.Run(string(b)+"/float64", func(t *testing.T) { lowranktest.CheckInit(t, initWith[float64](b), tol64) })
		t.Run(string(b)+"/float32", func(t *testing.T) { lowranktest.CheckInit(t, initWith[float32](b), tol32) })
	}
}

// TestInitStrategies forces each exact SVD strategy (complete thin SVD, and
// window-only dgesvdx) through the init suite.
func TestInitStrategies(t *testing.T) {
	for _, strategy := range []string{lowrank.SVDThin, lowrank.SVDWindowOnly} {
		with := func(f64 bool) any {
			if f64 {
				return lowranktest.InitFunc[float64](func(layer string, w lowrank.Matrix[float64], c lowrank.Config) (lowrank.Adapter[float64], error) {
					if c.SVD == "" {
						c.SVD = strategy
					}
					return lowrank.Init(layer, w, c)
				})
			}
			return lowranktest.InitFunc[float32](func(layer string, w lowrank.Matrix[float32], c lowrank.Config) (lowrank.Adapter[float32], error) {
				if c.SVD == "" {
					c.SVD = strategy
				}
				return lowrank.Init(layer, w, c)
			})
		}
		t.Run(strategy+"/float64", func(t *testing.T) { lowranktest.CheckInit(t, with(true).(lowranktest.InitFunc[float64]), tol64) })
		t.Run(strategy+"/float32", func(t *testing.T) { lowranktest.CheckInit(t, with(false).(lowranktest.InitFunc[float32]), tol32) })
	}
}

func TestRandomizedInit(t *testing.T) {
	for _, b := range backends() {
		for _, algo := range []string{"", lowrank.RandomizedSubspace} {
			name := string(b) + "/" + cmp.Or(algo, "default")
			t.Run(name+"/float64", func(t *testing.T) {
				lowranktest.CheckRandomizedInit(t, initAlgorithm[float64](b, algo), tol64, 1e-3)
			})
			t.Run(name+"/float32", func(t *testing.T) {
				lowranktest.CheckRandomizedInit(t, initAlgorithm[float32](b, algo), tol32, 1e-3)
			})
		}
	}
}

// initAlgorithm is initWith with Config.Randomized set.
func initAlgorithm[T lowrank.Float](b lowrank.SVDBackend, algo string) lowranktest.InitFunc[T] {
	return func(layer string, w lowrank.Matrix[T], c lowrank.Config) (lowrank.Adapter[T], error) {
		c.Backend, c.Randomized = b, algo
		return lowrank.Init(layer, w, c)
	}
}

// TestInitFromSVD runs the init suite through InitFromSVD with a thin SVD
// computed once per call, and with window-only factors.
func TestInitFromSVD(t *testing.T) {
	fromThin := func(layer string, w lowrank.Matrix[float64], c lowrank.Config) (lowrank.Adapter[float64], error) {
		switch c.Method {
		case lowrank.MethodLoRA, lowrank.MethodOLoRA:
			return lowrank.Init(layer, w, c)
		}
		f, err := lowrank.ThinSVD(w)
		if err != nil {
			return lowrank.Adapter[float64]{}, fmt.Errorf("layer %q: %w", layer, err)
		}
		return lowrank.InitFromSVD(layer, w, f, c)
	}
	lowranktest.CheckInit(t, fromThin, tol64)
}

func TestToLoRA(t *testing.T) {
	for _, b := range backends() {
		t.Run(string(b)+"/float64", func(t *testing.T) { lowranktest.CheckToLoRA(t, initWith[float64](b), tol64) })
		t.Run(string(b)+"/float32", func(t *testing.T) { lowranktest.CheckToLoRA(t, initWith[float32](b), tol32) })
	}
}

func TestBackendsAgree(t *testing.T) {
	if !lowrank.LAPACKAvailable() {
		t.Skip("LAPACK not built in")
	}
	for _, c := range lowranktest.Cases[float64]() {
		a, err := lowrank.ThinSVDWith(c.W, lowrank.BackendLAPACK)
		if err != nil {
			t.Fatal(err)
		}
		b, err := lowrank.ThinSVDWith(c.W, lowrank.BackendGonum)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.S {
			if d := a.S[i] - b.S[i]; d > 1e-13*a.S[0] || -d > 1e-13*a.S[0] {
				t.Errorf("%s: σ_%d LAPACK %v gonum %v", c.Name, i, a.S[i], b.S[i])
			}
		}
	}
}

func TestParseWindowSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want lowrank.WindowSpec
	}{
		{"pissa", lowrank.WindowSpec{Preset: "pissa"}},
		{"milora", lowrank.WindowSpec{Preset: "milora"}},
		{"mid", lowrank.WindowSpec{Preset: "mid"}},
		{"start=12", lowrank.WindowSpec{Preset: "start", Start: 12}},
		{"7", lowrank.WindowSpec{Preset: "start", Start: 7}},
		{"fraction=0.25", lowrank.WindowSpec{Preset: "fraction", Fraction: 0.25}},
		{"f=1", lowrank.WindowSpec{Preset: "fraction", Fraction: 1}},
	} {
		got, err := lowrank.ParseWindowSpec(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseWindowSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if again, err := lowrank.ParseWindowSpec(got.String()); err != nil || again != got {
			t.Errorf("round trip of %+v via %q gave %+v, %v", got, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "top", "start=x", "fraction=", "start=1.5"} {
		if _, err := lowrank.ParseWindowSpec(bad); err == nil {
			t.Errorf("ParseWindowSpec(%q): no error", bad)
		}
	}
}

func TestResolve(t *testing.T) {
	// k = 100, r = 16: k−r = 84.
	for _, tc := range []struct {
		spec lowrank.WindowSpec
		want int
	}{
		{lowrank.WindowSpec{Preset: "pissa"}, 0},
		{lowrank.WindowSpec{Preset: "milora"}, 84},
		{lowrank.WindowSpec{Preset: "mid"}, 42},
		{lowrank.WindowSpec{}, 0},
		{lowrank.WindowSpec{Preset: "start", Start: 84}, 84},
		{lowrank.WindowSpec{Preset: "fraction", Fraction: 0.5}, 42},
		{lowrank.WindowSpec{Preset: "fraction", Fraction: 0.25}, 21},
		{lowrank.WindowSpec{Preset: "fraction", Fraction: 0.1}, 8}, // round(8.4)
		{lowrank.WindowSpec{Preset: "fraction", Fraction: 1}, 84},
	} {
		got, err := tc.spec.Resolve("l", 100, 300, 16)
		if err != nil || got != tc.want {
			t.Errorf("%v.Resolve = %d, %v; want %d", tc.spec, got, err, tc.want)
		}
	}
	_, err := lowrank.WindowSpec{Preset: "start", Start: 85}.Resolve("blocks.3.mlp.fc1", 100, 300, 16)
	want := `lowrank: layer "blocks.3.mlp.fc1" (100×300, k=100): invalid window start=85 with s=85 r=16: s+r=101 exceeds k=100`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

func TestMatMulAndQR(t *testing.T) {
	a := lowranktest.Gaussian[float64](7, 4, 1)
	b := lowranktest.Gaussian[float64](7, 5, 2)
	c, err := lowrank.MatMul(true, false, a, b) // 4×5 = aᵀ·b
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		for j := 0; j < 5; j++ {
			var want float64
			for p := 0; p < 7; p++ {
				want += a.At(p, i) * b.At(p, j)
			}
			if d := c.At(i, j) - want; d > 1e-13 || d < -1e-13 {
				t.Fatalf("C[%d,%d] = %v, want %v", i, j, c.At(i, j), want)
			}
		}
	}
	if _, err := lowrank.MatMul(false, false, a, b); err == nil {
		t.Errorf("7×4 · 7×5: no error")
	}
	for _, shape := range [][2]int{{9, 4}, {4, 9}, {6, 6}} {
		w := lowranktest.Gaussian[float64](shape[0], shape[1], 3)
		q, r, err := lowrank.ReducedQR(w)
		if err != nil {
			t.Fatal(err)
		}
		qr, _ := lowrank.MatMul(false, false, q, r)
		for i := range w.Data {
			if d := qr.Data[i] - w.Data[i]; d > 1e-13 || d < -1e-13 {
				t.Fatalf("%v: Q·R differs from W by %v", shape, d)
			}
		}
		for i := 0; i < r.Rows; i++ {
			for j := 0; j < i; j++ {
				if r.At(i, j) != 0 {
					t.Fatalf("%v: R[%d,%d] = %v", shape, i, j, r.At(i, j))
				}
			}
		}
	}
}

func TestDoRAMagnitude(t *testing.T) {
	c := lowranktest.Cases[float64]()[0]
	for _, method := range []string{lowrank.MethodLoRA, lowrank.MethodMid, lowrank.MethodOLoRA} {
		a, err := lowrank.Init("l", c.W, lowrank.Config{Method: method, Rank: 3, Alpha: 6})
		if err != nil {
			t.Fatal(err)
		}
		mag := lowrank.DoRAMagnitude(a)
		if len(mag) != c.W.Rows {
			t.Fatalf("%s: %d magnitudes, want %d (one per output row)", method, len(mag), c.W.Rows)
		}
		for i := range mag {
			var ss float64
			for j := 0; j < c.W.Cols; j++ {
				ss += c.W.At(i, j) * c.W.At(i, j)
			}
			want := math.Sqrt(ss)
			if d := mag[i] - want; d > 1e-12*want || -d > 1e-12*want {
				t.Errorf("%s: magnitude[%d] = %v, want ‖W[%d,:]‖ = %v", method, i, mag[i], i, want)
			}
		}
	}
}

func TestBLASThreads(t *testing.T) {
	old := lowrank.BLASThreads()
	defer lowrank.SetBLASThreads(old)
	lowrank.SetBLASThreads(1)
	if got := lowrank.BLASThreads(); got != 1 {
		t.Errorf("after SetBLASThreads(1): %d", got)
	}
}
