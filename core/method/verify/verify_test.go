package verify_test

import (
	"math"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/verify"
)

// A hand-made exact adapter: W = Base + scale·B·A with B = [1;2], A = [3 4].
func exact(dt method.DType) (method.Request, method.Result) {
	mk := func(r, c int, v ...float64) method.Matrix {
		m := method.Matrix{DType: dt, Rows: r, Cols: c}
		for _, x := range v {
			if dt == method.Float32 {
				m.F32 = append(m.F32, float32(x))
			} else {
				m.F64 = append(m.F64, x)
			}
		}
		return m
	}
	// scale 2: scale·B·A = [6 8; 12 16]; Base = W − that.
	w := mk(2, 2, 7, 9, 13, 20)
	req := method.Request{Layer: "l", Weight: w, Rank: 1, Scale: 2}
	res := method.Result{A: mk(1, 2, 3, 4), B: mk(2, 1, 1, 2), Base: mk(2, 2, 1, 1, 1, 4), Components: []int{0}}
	return req, res
}

func TestResult(t *testing.T) {
	for _, dt := range []method.DType{method.Float32, method.Float64} {
		req, res := exact(dt)
		if err := verify.Result(req, res); err != nil {
			t.Fatalf("%s: exact adapter rejected: %v", dt, err)
		}
		if e := verify.IdentityError(req.Weight, res.Base, res.B, res.A, req.Scale); e != 0 {
			t.Errorf("%s: identity error %g, want 0", dt, e)
		}
		// Perturb Base by δ in one entry: error = δ/‖W‖ (‖W‖² = 49+81+169+400).
		bad := res
		if dt == method.Float32 {
			bad.Base.F32 = append([]float32(nil), res.Base.F32...)
			bad.Base.F32[3] += 0.5
		} else {
			bad.Base.F64 = append([]float64(nil), res.Base.F64...)
			bad.Base.F64[3] += 0.5
		}
		want := 0.5 / math.Sqrt(699)
		if e := verify.IdentityError(req.Weight, bad.Base, bad.B, bad.A, req.Scale); math.Abs(e-want) > 1e-7 {
			t.Errorf("%s: identity error %g, want %g", dt, e, want)
		}
		if err := verify.Result(req, bad); err == nil || !strings.Contains(err.Error(), "does not reproduce W") {
			t.Errorf("%s: perturbed base: %v", dt, err)
		}
		bad.ChangesFunction = true
		if err := verify.Result(req, bad); err != nil {
			t.Errorf("%s: declared change rejected: %v", dt, err)
		}
	}
	req, res := exact(method.Float64)
	res.A.F64[1] = math.Inf(1)
	if err := verify.Result(req, res); err == nil || !strings.Contains(err.Error(), "non-finite element +Inf at (0,1)") {
		t.Errorf("Inf: %v", err)
	}
	req, res = exact(method.Float64)
	res.Components = []int{2}
	if err := verify.Result(req, res); err == nil || !strings.Contains(err.Error(), "component index 2 outside [0, 2)") {
		t.Errorf("component: %v", err)
	}
	req, res = exact(method.Float64)
	res.B.DType, res.B.F32, res.B.F64 = method.Float32, []float32{1, 2}, nil
	if err := verify.Result(req, res); err == nil || !strings.Contains(err.Error(), `B (m×r) has dtype "float32", want "float64"`) {
		t.Errorf("dtype: %v", err)
	}
}
