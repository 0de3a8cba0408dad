// Package builtin adapts prism's built-in initialisation methods
// (core/lowrank: lora, pissa, milora, mid, window, olora) to the
// core/method.Method interface that plugin methods satisfy too, so that an
// experiment can use either by name. It also converts between the plain
// method.Matrix and lowrank's generic matrices (no copy).
package builtin

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/method"
)

// Names lists the built-in methods.
func Names() []string { return slices.Clone(lowrank.Methods) }

// IsBuiltin reports whether name is a built-in method.
func IsBuiltin(name string) bool { return slices.Contains(lowrank.Methods, name) }

// Method is a built-in method as a method.Method.
type Method struct{ name string }

var _ method.Method = Method{}

// New returns the built-in method of that name.
func New(name string) (Method, error) {
	if !IsBuiltin(name) {
		return Method{}, fmt.Errorf("unknown built-in method %q (built in: %v)", name, lowrank.Methods)
	}
	return Method{name: name}, nil
}

func ptr(x float64) *float64 { return &x }

var descriptions = map[string]string{
	lowrank.MethodLoRA:   "plain LoRA: A Kaiming-uniform, B = 0, Base = W",
	lowrank.MethodPiSSA:  "PiSSA: the window of the top r singular components (s = 0)",
	lowrank.MethodMiLoRA: "MiLoRA: the window of the bottom r singular components (s = k−r)",
	lowrank.MethodMid:    "the middle window (s = ⌊(k−r)/2⌋)",
	lowrank.MethodWindow: "any window of r singular components (hyperparameter window: start=S or fraction=F)",
	lowrank.MethodOLoRA:  "OLoRA: W = Q·R, B = Q[:, :r], A = R[:r, :]",
}

// Metadata describes the method and its hyperparameters: for the window
// methods, svd (full | randomized), randomized (krylov | subspace), niter and
// oversample; for window also
// window (start=S | fraction=F | pissa | milora | mid).
func (b Method) Metadata() method.Metadata {
	md := method.Metadata{Name: b.name, Version: "builtin", Description: descriptions[b.name]}
	switch b.name {
	case lowrank.MethodPiSSA, lowrank.MethodMiLoRA, lowrank.MethodMid, lowrank.MethodWindow:
		md.Hyperparameters = []method.HyperParam{
			{Name: "svd", Type: method.String, Description: "full (exact) or randomized (top s+r triplets)", Default: method.Value{String: lowrank.SVDFull}, Choices: []string{lowrank.SVDFull, lowrank.SVDRandomized}},
			{Name: "randomized", Type: method.String, Description: "randomized SVD algorithm: krylov (randomized block Krylov) or subspace (power iteration)", Default: method.Value{String: lowrank.RandomizedKrylov}, Choices: []string{lowrank.RandomizedKrylov, lowrank.RandomizedSubspace}},
			{Name: "niter", Type: method.Int, Description: "randomized SVD Krylov steps or power iterations (0: default, -1: none)", Default: method.Value{Int: 0}, Min: ptr(-1)},
			{Name: "oversample", Type: method.Int, Description: "randomized SVD extra columns (0: default, -1: none)", Default: method.Value{Int: 0}, Min: ptr(-1)},
		}
	}
	if b.name == lowrank.MethodWindow {
		md.Hyperparameters = append([]method.HyperParam{
			{Name: "window", Type: method.String, Description: "where the window starts: start=S, fraction=F, pissa, milora or mid", Default: method.Value{String: "start=0"}},
		}, md.Hyperparameters...)
	}
	return md
}

// Config builds the lowrank configuration of a request.
func (b Method) Config(req method.Request) (lowrank.Config, error) {
	c := lowrank.Config{Method: b.name, Rank: req.Rank, Alpha: req.Alpha, RSLoRA: req.RSLoRA, Seed: req.Seed,
		SVD: req.Hyper["svd"].String, Randomized: req.Hyper["randomized"].String, NIter: int(req.Hyper["niter"].Int), Oversample: int(req.Hyper["oversample"].Int)}
	if b.name == lowrank.MethodWindow {
		w, err := lowrank.ParseWindowSpec(req.Hyper["window"].String)
		if err != nil {
			return c, fmt.Errorf("layer %q: %w", req.Layer, err)
		}
		c.Window = w
	}
	if req.Scale != 0 && req.Rank > 0 && math.Abs(req.Scale-c.Scale()) > 1e-12*math.Abs(c.Scale()) {
		return c, fmt.Errorf("layer %q: scale %g does not match alpha %g, rank %d, rslora %v (scale %g)", req.Layer, req.Scale, req.Alpha, req.Rank, req.RSLoRA, c.Scale())
	}
	return c, nil
}

// Init runs lowrank.Init, or lowrank.InitFromSVD when the request brings a
// full SVD and the method is a window method with svd=full.
func (b Method) Init(ctx context.Context, req method.Request) (method.Result, error) {
	if err := ctx.Err(); err != nil {
		return method.Result{}, err
	}
	c, err := b.Config(req)
	if err != nil {
		return method.Result{}, err
	}
	switch req.Weight.DType {
	case method.Float32:
		return initT(req, c, req.Weight.F32)
	case method.Float64:
		return initT(req, c, req.Weight.F64)
	}
	return method.Result{}, fmt.Errorf("layer %q: unknown dtype %q", req.Layer, req.Weight.DType)
}

func initT[T lowrank.Float](req method.Request, c lowrank.Config, data []T) (method.Result, error) {
	w, err := lowrank.MatrixFrom(req.Weight.Rows, req.Weight.Cols, data)
	if err != nil {
		return method.Result{}, fmt.Errorf("layer %q: %w", req.Layer, err)
	}
	var a lowrank.Adapter[T]
	windowMethod := c.Method != lowrank.MethodLoRA && c.Method != lowrank.MethodOLoRA
	if windowMethod && req.SVD != nil && c.SVD != lowrank.SVDRandomized {
		a, err = lowrank.InitFromSVD(req.Layer, w, Factors[T](req.SVD), c)
	} else {
		a, err = lowrank.Init(req.Layer, w, c)
	}
	if err != nil {
		return method.Result{}, err
	}
	res := method.Result{A: FromLowrank(a.A), B: FromLowrank(a.B), Base: FromLowrank(a.Base)}
	if windowMethod {
		for t := range a.Rank {
			res.Components = append(res.Components, a.Start+t)
		}
		res.Note = fmt.Sprintf("window s=%d", a.Start)
	}
	return res, nil
}

// FromLowrank views a lowrank matrix as a method.Matrix (no copy).
func FromLowrank[T lowrank.Float](m lowrank.Matrix[T]) method.Matrix {
	out := method.Matrix{Rows: m.Rows, Cols: m.Cols}
	switch d := any(m.Data).(type) {
	case []float32:
		out.DType, out.F32 = method.Float32, d
	case []float64:
		out.DType, out.F64 = method.Float64, d
	}
	return out
}

// ToLowrank views a method.Matrix of element type T as a lowrank matrix (no
// copy); it fails when the dtype is not T's.
func ToLowrank[T lowrank.Float](m method.Matrix) (lowrank.Matrix[T], error) {
	var data []T
	switch d := any(&data).(type) {
	case *[]float32:
		if m.DType != method.Float32 {
			return lowrank.Matrix[T]{}, fmt.Errorf("matrix is %s, want float32", m.DType)
		}
		*d = m.F32
	case *[]float64:
		if m.DType != method.Float64 {
			return lowrank.Matrix[T]{}, fmt.Errorf("matrix is %s, want float64", m.DType)
		}
		*d = m.F64
	}
	return lowrank.MatrixFrom(m.Rows, m.Cols, data)
}

// Factors converts a method.SVD to lowrank factors of element type T
// (U and V shared, S converted).
func Factors[T lowrank.Float](s *method.SVD) lowrank.Factors[T] {
	u, _ := ToLowrank[T](s.U)
	v, _ := ToLowrank[T](s.V)
	sv := make([]T, len(s.S))
	for i, x := range s.S {
		sv[i] = T(x)
	}
	return lowrank.Factors[T]{U: u, S: sv, V: v}
}

// FromFactors converts lowrank factors to a method.SVD (U and V shared).
func FromFactors[T lowrank.Float](f lowrank.Factors[T]) *method.SVD {
	s := make([]float64, len(f.S))
	for i, x := range f.S {
		s[i] = float64(x)
	}
	return &method.SVD{U: FromLowrank(f.U), V: FromLowrank(f.V), S: s}
}

// ThinSVD computes the thin SVD of w with lowrank.ThinSVD (LAPACK when
// built with cgo) in w's dtype.
func ThinSVD(w method.Matrix) (*method.SVD, error) {
	switch w.DType {
	case method.Float32:
		m, err := ToLowrank[float32](w)
		if err != nil {
			return nil, err
		}
		f, err := lowrank.ThinSVD(m)
		if err != nil {
			return nil, err
		}
		return FromFactors(f), nil
	case method.Float64:
		m, err := ToLowrank[float64](w)
		if err != nil {
			return nil, err
		}
		f, err := lowrank.ThinSVD(m)
		if err != nil {
			return nil, err
		}
		return FromFactors(f), nil
	}
	return nil, fmt.Errorf("SVD: unknown dtype %q", w.DType)
}
