// Package method defines what an adapter-initialisation method is: the
// interface that built-in methods (PiSSA, MiLoRA, windows, LoRA, OLoRA) and
// plugin methods alike satisfy, and the plain request, result and metadata
// types they exchange. It holds no implementation.
//
// A method initialises one linear layer y = x·Wᵀ, W: m×n (out×in), with a
// low-rank adapter of rank r:
//
//	W ≈ Base + scale·B·A,   B: m×r,  A: r×n,  Base: m×n
//
// where scale = α/r (or α/√r with rsLoRA). Unless the method declares that it
// changes the layer's function (Result.ChangesFunction), Base + scale·B·A
// reproduces W: ‖W − (Base + scale·B·A)‖_F / ‖W‖_F ≤ 1e-5 in float32 and
// ≤ 1e-12 in float64, so the model's output at step 0 is the original one.
package method

import "context"

// Method initialises low-rank adapters, one layer at a time. Init must be
// safe to call from several goroutines for different layers.
type Method interface {
	// Metadata describes the method: name, version, hyperparameters.
	Metadata() Metadata
	// Init returns A (r×n), B (m×r) and Base (m×n) for req.Weight (m×n), in
	// the weight's dtype. Hyperparameters in req.Hyper have been checked
	// against Metadata and completed with defaults by the caller.
	Init(ctx context.Context, req Request) (Result, error)
}

// DType is the element type of a Matrix.
type DType string

// The element types a Matrix can hold.
const (
	Float32 DType = "float32"
	Float64 DType = "float64"
)

// Matrix is a dense row-major matrix of float32 or float64 elements:
// element (i,j) is F32[i*Cols+j] when DType is Float32 (F64 is nil), and
// F64[i*Cols+j] when DType is Float64 (F32 is nil).
type Matrix struct {
	DType      DType
	Rows, Cols int
	F32        []float32
	F64        []float64
}

// SVD is a thin (or truncated) singular value decomposition
// W ≈ U·diag(S)·Vᵀ with S descending: U m×q and V n×q in W's dtype, S
// (length q) in float64 whatever W's dtype.
type SVD struct {
	U, V Matrix
	S    []float64
}

// Request asks for the adapter of one layer.
type Request struct {
	// Layer names the layer (e.g. "encoder.layer.3.attention.query.weight").
	Layer string
	// Weight is the layer's weight W, m×n (out×in).
	Weight Matrix
	// SVD is W's thin SVD when the caller has it (always present for a
	// method whose Metadata.NeedsSVD is set), nil otherwise.
	SVD *SVD
	// Rank is r, the adapter's rank.
	Rank int
	// Alpha is LoRA's α; RSLoRA selects scale = α/√r instead of α/r.
	Alpha  float64
	RSLoRA bool
	// Scale is the factor in front of B·A: α/r, or α/√r with RSLoRA.
	Scale float64
	// Seed seeds any randomness, so that a request always has one answer.
	Seed uint64
	// Hyper holds a value for every hyperparameter in Metadata.
	Hyper map[string]Value
}

// Result is one layer's adapter: W ≈ Base + Scale·B·A.
type Result struct {
	// A is r×n, B is m×r, Base is m×n, all in the weight's dtype.
	A, B, Base Matrix
	// Components lists the singular-component indices (0 = largest) the
	// adapter was built from, in order; nil when it was not built from the
	// SVD. A window starting at s is s, s+1, …, s+r−1.
	Components []int
	// ChangesFunction declares that Base + Scale·B·A need not equal W (e.g.
	// a method that prunes or perturbs W); the identity is then not checked.
	ChangesFunction bool
	// Note is free text for logs and results (e.g. "energy 0.90 at s=37").
	Note string
}

// Metadata describes a method.
type Metadata struct {
	// Name is how users select the method (e.g. --method NAME).
	Name        string
	Version     string
	Description string
	// Hyperparameters lists every hyperparameter the method accepts.
	Hyperparameters []HyperParam
	// NeedsSVD asks the caller to supply Request.SVD (computing it if it
	// has none), so the method does not recompute it.
	NeedsSVD bool
}

// HyperType is the type of a hyperparameter's value.
type HyperType string

// The hyperparameter types.
const (
	Int    HyperType = "int"
	Float  HyperType = "float"
	Bool   HyperType = "bool"
	String HyperType = "string"
)

// Value is one hyperparameter value: the field named by the parameter's
// HyperType holds it (Int for Int, Float for Float, …).
type Value struct {
	Int    int64
	Float  float64
	Bool   bool
	String string
}

// HyperParam describes one hyperparameter.
type HyperParam struct {
	Name        string
	Type        HyperType
	Description string
	Default     Value
	// Min and Max bound an Int or Float parameter, inclusively, when non-nil.
	Min, Max *float64
	// Choices lists the allowed values of a String parameter (nil: any).
	Choices []string
}
