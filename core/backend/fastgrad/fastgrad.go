// Package fastgrad replaces GoMLX's reverse-mode gradients (VJPs) of Dot and
// DotGeneral with ones that are themselves matrix products.
//
// GoMLX v0.25.0's stock VJP of DotGeneral materialises the broadcast product
// v ⊗ other (one element per (batch, lhsCross, rhsCross, contracting) tuple) and
// reduce-sums it: O(b·m·n·k) memory. For C = DotGeneral(A, B) with
// C[b, i, j] = Σ_k A[b, i, k]·B[b, j, k] (axes in any layout) the gradients are
//
//	∂L/∂A[b, i, k] = Σ_j V[b, i, j]·B[b, j, k]      (one DotGeneral of V with B)
//	∂L/∂B[b, j, k] = Σ_i V[b, i, j]·A[b, i, k]      (one DotGeneral of V with A)
//
// followed by at most one transpose back to the operand's own axis order.
//
// It also gives Slice (unit strides) a gradient that needs no Pad, an op the
// pure-Go backend lacks: ∂L/∂x is v with zero blocks concatenated before and
// after it along each sliced axis. And it defines the VJP of Rsqrt, which
// GoMLX v0.25.0 lacks (LayerNorm needs it). The VJPs of Mul and Div keep
// broadcast operands (a scalar, a per-row [..., 1] statistic, a [1, 1, d]
// gain) un-broadcast: the stock ones materialise them at the output's shape
// first (one full-size BroadcastInDim each), where the backend's implicit
// broadcasting computes the same products without the copy.
//
// Importing the package installs these VJPs in graph.VJPRegistration; the
// stock ones stay available in Stock (tests compare the two).
package fastgrad

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Stock holds the VJPs that GoMLX registered for the node types this package
// replaces, captured before replacing them.
var Stock = map[NodeType]VJP{}

// Fast holds this package's VJPs, by node type.
var Fast = map[NodeType]VJP{
	NodeTypeDot:        singleOutput(dotVJP),
	NodeTypeDotGeneral: singleOutput(dotGeneralVJP),
	NodeTypeSlice:      singleOutput(sliceVJP),
	NodeTypeRsqrt:      singleOutput(rsqrtVJP),
	NodeTypeMul:        singleOutput(mulVJP),
	NodeTypeDiv:        singleOutput(divVJP),
}

func init() {
	for t, fn := range Fast {
		if stock, ok := VJPRegistration[t]; ok {
			Stock[t] = stock
		}
		VJPRegistration[t] = fn
	}
}

// Use installs the given VJP table (Fast or Stock) into graph.VJPRegistration.
// Gradients are built when a graph is built, so a graph built after Use(Stock)
// keeps the stock gradients. Not safe to call while graphs are being built.
func Use(table map[NodeType]VJP) {
	for t := range Fast {
		if fn, ok := table[t]; ok {
			VJPRegistration[t] = fn
		} else {
			delete(VJPRegistration, t)
		}
	}
}

func singleOutput(fn func(node, v *Node) []*Node) VJP {
	return func(node *Node, vjps []*Node, _ shapes.Shape) []*Node {
		return fn(node, vjps[0])
	}
}

// dotVJP is the VJP of graph.Dot (ranks 1·1, 2·1, 2·2).
func dotVJP(node, v *Node) []*Node {
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	switch {
	case lhs.Rank() == 1 && rhs.Rank() == 1: // v scalar.
		return []*Node{Mul(v, rhs), Mul(v, lhs)}
	case lhs.Rank() == 2 && rhs.Rank() == 1: // [i,j]·[j] → [i]
		return []*Node{
			DotGeneral(v, nil, nil, rhs, nil, nil), // outer product → [i, j]
			DotGeneral(v, []int{0}, nil, lhs, []int{0}, nil),
		}
	case lhs.Rank() == 2 && rhs.Rank() == 2: // [i,j]·[j,k] → [i,k]
		return []*Node{
			DotGeneral(v, []int{1}, nil, rhs, []int{1}, nil), // [i, j]
			DotGeneral(lhs, []int{0}, nil, v, []int{0}, nil), // [j, k]
		}
	}
	panic(fmt.Sprintf("fastgrad: Dot with operand ranks %d and %d is not defined", lhs.Rank(), rhs.Rank()))
}

// DotGeneralAxes are the axes of a DotGeneral node, as given when it was built.
type DotGeneralAxes struct {
	LhsContracting, LhsBatch, RhsContracting, RhsBatch []int
}

// AxesOf recovers the axes of a DotGeneral node. GoMLX keeps them in an
// unexported field; they are read by reflection (read-only), falling back to
// parsing the node's String() form.
func AxesOf(node *Node) (DotGeneralAxes, error) {
	if node.Type() != NodeTypeDotGeneral {
		return DotGeneralAxes{}, fmt.Errorf("fastgrad: node %s is a %s, not a DotGeneral", node, node.Type())
	}
	if axes, ok := axesByReflection(node); ok {
		return axes, nil
	}
	return axesFromString(node.String())
}

func axesByReflection(node *Node) (DotGeneralAxes, bool) {
	f, ok := intFieldsByReflection(node, "lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes")
	if !ok {
		return DotGeneralAxes{}, false
	}
	return DotGeneralAxes{f[0], f[1], f[2], f[3]}, true
}

// intFieldsByReflection reads []int fields of the node's (unexported) static
// parameters. Reflection only reads; it never writes GoMLX's data.
func intFieldsByReflection(node *Node, names ...string) (out [][]int, ok bool) {
	defer func() {
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	inputs := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !inputs.IsValid() || inputs.Kind() != reflect.Interface || inputs.IsNil() {
		return nil, false
	}
	params := inputs.Elem()
	if params.Kind() != reflect.Pointer || params.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	params = params.Elem()
	for _, name := range names {
		f := params.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Int {
			return nil, false
		}
		vals := make([]int, f.Len())
		for i := range vals {
			vals[i] = int(f.Index(i).Int())
		}
		out = append(out, vals)
	}
	return out, true
}

var axesPattern = regexp.MustCompile(`DotGeneral\(lhs=\[#\d+\], lhsContractingAxes=\[([\d ]*)\], lhsBatchAxes=\[([\d ]*)\], ` +
	`rhs=\[#\d+\], rhsContractingAxes=\[([\d ]*)\], rhsBatchAxes=\[([\d ]*)\]\)`)

func axesFromString(s string) (DotGeneralAxes, error) {
	m := axesPattern.FindStringSubmatch(s)
	if m == nil {
		return DotGeneralAxes{}, fmt.Errorf("fastgrad: cannot read DotGeneral axes from %q", s)
	}
	return DotGeneralAxes{parseInts(m[1]), parseInts(m[2]), parseInts(m[3]), parseInts(m[4])}, nil
}

// parseInts parses the space-separated digits of a printed []int.
func parseInts(field string) []int {
	out := []int{}
	for _, f := range strings.Fields(field) {
		n, _ := strconv.Atoi(f) // the patterns admit digits only
		out = append(out, n)
	}
	return out
}

// crossAxes are the axes of an operand of the given rank that are neither
// contracting nor batch, ascending (DotGeneral's output order).
func crossAxes(rank int, contracting, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contracting, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// rankIn returns the position of x in the ascending order of set.
func rankIn(set []int, x int) int {
	n := 0
	for _, s := range set {
		if s < x {
			n++
		}
	}
	return n
}

func seq(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

func isIdentity(perm []int) bool {
	for i, p := range perm {
		if i != p {
			return false
		}
	}
	return true
}

// operandGrad computes ∂L/∂this for one operand of C = DotGeneral(lhs, rhs).
//
// this has contracting axes thisC (paired with otherC), batch axes thisB
// (paired with otherB) and cross axes thisX; other's cross axes are otherX.
// v holds ∂L/∂C with layout [batch | lhsX | rhsX]; vOtherX are the positions
// in v of the other operand's cross axes.
//
// The gradient is one DotGeneral that contracts v's otherX axes with other's
// cross axes (batch axes aligned), leaving [batch | thisX | otherC] or
// [batch | otherC | thisX] (otherC ascending); whichever needs no transpose is
// used, else one transpose restores this operand's layout.
func operandGrad(this, other, v *Node, thisC, thisB, otherC, otherB, vOtherX []int) *Node {
	rank := this.Rank()
	thisX := crossAxes(rank, thisC, thisB)
	otherX := crossAxes(other.Rank(), otherC, otherB)
	nb, nx, nc := len(thisB), len(thisX), len(thisC)
	vBatch := seq(0, nb)

	// Layout A: DotGeneral(v, other) → [batch | thisX | otherC ascending].
	// Layout B: DotGeneral(other, v) → [batch | otherC ascending | thisX].
	permA := make([]int, rank)
	permB := make([]int, rank)
	for j, a := range thisB {
		permA[a], permB[a] = j, j
	}
	for k, a := range thisX {
		permA[a] = nb + k
		permB[a] = nb + nc + k
	}
	for i, a := range thisC {
		r := rankIn(otherC, otherC[i])
		permA[a] = nb + nx + r
		permB[a] = nb + r
	}
	if isIdentity(permB) && !isIdentity(permA) {
		return DotGeneral(other, otherX, otherB, v, vOtherX, vBatch)
	}
	grad := DotGeneral(v, vOtherX, vBatch, other, otherX, otherB)
	if !isIdentity(permA) {
		grad = TransposeAllAxes(grad, permA...)
	}
	return grad
}

// dotGeneralVJP is the VJP of graph.DotGeneral as two DotGenerals (plus at
// most one transpose each); see the package documentation.
func dotGeneralVJP(node, v *Node) []*Node {
	axes, err := AxesOf(node)
	if err != nil {
		panic(err)
	}
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	nb := len(axes.LhsBatch)
	nlx := lhs.Rank() - len(axes.LhsContracting) - nb
	nrx := rhs.Rank() - len(axes.RhsContracting) - nb
	vLhsX := seq(nb, nlx)
	vRhsX := seq(nb+nlx, nrx)
	return []*Node{
		operandGrad(lhs, rhs, v, axes.LhsContracting, axes.LhsBatch, axes.RhsContracting, axes.RhsBatch, vRhsX),
		operandGrad(rhs, lhs, v, axes.RhsContracting, axes.RhsBatch, axes.LhsContracting, axes.LhsBatch, vLhsX),
	}
}

// SliceParams are the static parameters of a Slice node.
type SliceParams struct{ Starts, Limits, Strides []int }

// SliceParamsOf recovers the parameters of a Slice node (by reflection,
// read-only, falling back to parsing its String() form).
func SliceParamsOf(node *Node) (SliceParams, error) {
	if node.Type() != NodeTypeSlice {
		return SliceParams{}, fmt.Errorf("fastgrad: node %s is a %s, not a Slice", node, node.Type())
	}
	fields, ok := intFieldsByReflection(node, "starts", "limits", "strides")
	if ok {
		return SliceParams{fields[0], fields[1], fields[2]}, nil
	}
	m := slicePattern.FindStringSubmatch(node.String())
	if m == nil {
		return SliceParams{}, fmt.Errorf("fastgrad: cannot read Slice parameters from %q", node.String())
	}
	return SliceParams{parseInts(m[1]), parseInts(m[2]), parseInts(m[3])}, nil
}

var slicePattern = regexp.MustCompile(`Slice\(x=\[#\d+\], starts=\[([\d ]*)\], limits=\[([\d ]*)\], strides=\[([\d ]*)\]\)`)

// sliceVJP scatters v back into x's shape by concatenating zeros around it,
// axis by axis (unit strides only; other strides keep GoMLX's Pad-based VJP).
// Parts made by SplitAxis get one concatenated gradient instead.
func sliceVJP(node, v *Node) []*Node {
	if grad, ok := splitPartVJP(node, v); ok {
		return []*Node{grad}
	}
	p, err := SliceParamsOf(node)
	if err != nil {
		panic(err)
	}
	x := node.Inputs()[0]
	for _, s := range p.Strides {
		if s > 1 {
			return Stock[NodeTypeSlice](node, []*Node{v}, shapes.Make(v.DType()))
		}
	}
	grad := v
	for axis, dim := range x.Shape().Dimensions {
		before, after := p.Starts[axis], dim-p.Limits[axis]
		if before == 0 && after == 0 {
			continue
		}
		parts := make([]*Node, 0, 3)
		zeros := func(n int) *Node {
			dims := slices.Clone(grad.Shape().Dimensions)
			dims[axis] = n
			return Zeros(grad.Graph(), shapes.Make(grad.DType(), dims...))
		}
		if before > 0 {
			parts = append(parts, zeros(before))
		}
		parts = append(parts, grad)
		if after > 0 {
			parts = append(parts, zeros(after))
		}
		grad = Concatenate(parts, axis)
	}
	return []*Node{grad}
}

// rsqrtVJP: y = x^(−1/2), dy/dx = −½·x^(−3/2) = −½·y³.
func rsqrtVJP(node, v *Node) []*Node {
	return []*Node{Mul(v, MulScalar(Mul(node, Square(node)), -0.5))}
}

// SplitAxis splits x along axis into n equal parts, like graph.Split, but the
// gradient with respect to x is the concatenation of the parts' gradients,
// built once, instead of the sum of n zero-padded copies (n concatenations
// with zero blocks and n−1 additions of x-sized tensors).
//
// The reverse pass reaches the parts from the last to the first; each part's
// gradient is held until the first part's turn, which assembles them (parts
// that got no gradient contribute zeros). So the first part must receive a
// gradient whenever any other part does — true when every part feeds the loss,
// as q, k and v of attention do. The parts are marked with node aliases.
func SplitAxis(x *Node, axis, n int) []*Node {
	axis = AdjustAxisToOperandRank(x, axis)
	parts := Split(x, axis, n)
	if n == 1 {
		return parts
	}
	for i, p := range parts {
		p.WithAlias(fmt.Sprintf("%s%d/%d/%d/%d", splitAliasPrefix, x.Id(), axis, i, n))
	}
	return parts
}

const splitAliasPrefix = "/prism.split/"

type splitKey struct {
	graph *Graph
	x     NodeId
}

var (
	splitMu      sync.Mutex
	splitPending = map[splitKey][]*Node{}
)

// splitPartVJP handles the VJP of a SplitAxis part: it returns (nil, true)
// for all but the first part (holding v) and (∂L/∂x, true) for the first.
func splitPartVJP(node, v *Node) (*Node, bool) {
	alias := node.GetAlias()
	if !strings.HasPrefix(alias, splitAliasPrefix) {
		return nil, false
	}
	var xID, axis, i, n int
	if _, err := fmt.Sscanf(alias[len(splitAliasPrefix):], "%d/%d/%d/%d", &xID, &axis, &i, &n); err != nil || i >= n {
		return nil, false
	}
	key := splitKey{node.Graph(), NodeId(xID)}
	splitMu.Lock()
	grads := splitPending[key]
	if grads == nil {
		grads = make([]*Node, n)
		splitPending[key] = grads
	}
	grads[i] = v
	if i != 0 {
		splitMu.Unlock()
		return nil, true
	}
	delete(splitPending, key)
	splitMu.Unlock()
	for j, g := range grads {
		if g == nil {
			grads[j] = ZerosLike(v)
		}
	}
	return Concatenate(grads, axis), true
}

// reduceToShape sums v (the shape of a binary op's output) over the axes on
// which operand x was broadcast, returning x's shape: v itself when x has
// the output's shape, the total for a scalar x.
func reduceToShape(v, x *Node) *Node {
	switch {
	case x.Shape().Equal(v.Shape()):
		return v
	case x.IsScalar():
		return ReduceAllSum(v)
	}
	var axes []int
	for axis, d := range x.Shape().Dimensions {
		if d == 1 && v.Shape().Dimensions[axis] > 1 {
			axes = append(axes, axis)
		}
	}
	if len(axes) == 0 {
		return v
	}
	return Reshape(ReduceSum(v, axes...), x.Shape().Dimensions...)
}

// mulVJP: y = a⊙b (a, b broadcast to y's shape), ∂L/∂a = Σ_broadcast v⊙b,
// ∂L/∂b = Σ_broadcast v⊙a, the products broadcasting implicitly. Products
// made by GELU get the GELU's derivative instead.
func mulVJP(node, v *Node) []*Node {
	a, b := node.Inputs()[0], node.Inputs()[1]
	if strings.HasPrefix(node.GetAlias(), geluAliasPrefix) {
		return []*Node{Mul(v, geluDerivative(a, b)), nil}
	}
	return []*Node{reduceToShape(Mul(v, b), a), reduceToShape(Mul(v, a), b)}
}

// GELU is the exact Gaussian error linear unit x·Φ(x) = x·½(1 + erf(x/√2))
// (PyTorch's nn.GELU() default), with its derivative written out:
//
//	d/dx x·Φ(x) = Φ(x) + x·φ(x),   φ(x) = exp(−x²/2)/√(2π)
//
// The product x·Φ(x) is marked (node alias) so that its VJP is v⊙(Φ + x·φ)
// for x and nothing for Φ: 7 full-size ops (x², −½·…, + ln(1/√(2π)), exp,
// x·…, Φ + …, v⊙…) instead of the 10 of autodiff through the product, the
// scalings and erf. The forward values are those of the formula above.
func GELU(x *Node) *Node {
	phi := MulScalar(OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))), 0.5)
	y := Mul(x, phi)
	return y.WithAlias(fmt.Sprintf("%s%d", geluAliasPrefix, y.Id()))
}

const geluAliasPrefix = "/prism.gelu/"

// geluDerivative is Φ(x) + x·φ(x) for x and Φ(x), φ(x) evaluated as
// exp(ln(1/√(2π)) − x²/2).
func geluDerivative(x, phi *Node) *Node {
	logDensityAtZero := -0.5 * math.Log(2*math.Pi)
	density := Exp(AddScalar(MulScalar(Square(x), -0.5), logDensityAtZero))
	return Add(phi, Mul(x, density))
}

// divVJP: y = a/b, ∂L/∂a = Σ_broadcast v/b, ∂L/∂b = −Σ_broadcast v⊙(a/(b⊙b))
// (GoMLX's arithmetic, the operations broadcasting implicitly; b⊙b at b's
// own shape).
func divVJP(node, v *Node) []*Node {
	a, b := node.Inputs()[0], node.Inputs()[1]
	return []*Node{reduceToShape(Div(v, b), a), reduceToShape(Neg(Mul(v, Div(a, Mul(b, b)))), b)}
}
