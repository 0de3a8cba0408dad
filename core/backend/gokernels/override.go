package gokernels

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// executor is the signature of simplego's per-op executors.
type executor = func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error)

// simplego's table of op executors (package-level, filled by its init functions).
//
//go:linkname nodeExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var nodeExecutors [backends.OpTypeLast]executor

// simplego's pooled buffer allocation.
//
//go:linkname getBufferForShape github.com/gomlx/gomlx/backends/simplego.(*Backend).getBufferForShape
func getBufferForShape(b *simplego.Backend, shape shapes.Shape) *simplego.Buffer

// Offsets of the simplego fields read here, checked against the names and
// types this package was written for (GoMLX v0.25.0).
var (
	nodeShapeOff, nodeDataOff uintptr
	bufShapeOff, bufFlatOff   uintptr
	layoutErr                 = checkLayout()
)

func fieldOffset(t reflect.Type, name string, want reflect.Type) (uintptr, error) {
	f, ok := t.FieldByName(name)
	if !ok || len(f.Index) != 1 {
		return 0, fmt.Errorf("gokernels: %s has no field %q", t, name)
	}
	if f.Type != want {
		return 0, fmt.Errorf("gokernels: %s.%s is a %s, expected %s", t, name, f.Type, want)
	}
	return f.Offset, nil
}

func checkLayout() error {
	shapeT := reflect.TypeOf(shapes.Shape{})
	anyT := reflect.TypeOf((*any)(nil)).Elem()
	nodeT, bufT := reflect.TypeOf(simplego.Node{}), reflect.TypeOf(simplego.Buffer{})
	var err error
	if nodeShapeOff, err = fieldOffset(nodeT, "shape", shapeT); err != nil {
		return err
	}
	if nodeDataOff, err = fieldOffset(nodeT, "data", anyT); err != nil {
		return err
	}
	if bufShapeOff, err = fieldOffset(bufT, "shape", shapeT); err != nil {
		return err
	}
	if bufFlatOff, err = fieldOffset(bufT, "flat", anyT); err != nil {
		return err
	}
	return nil
}

func nodeShape(n *simplego.Node) shapes.Shape {
	return *(*shapes.Shape)(unsafe.Add(unsafe.Pointer(n), nodeShapeOff))
}
func nodeData(n *simplego.Node) any { return *(*any)(unsafe.Add(unsafe.Pointer(n), nodeDataOff)) }
func bufShape(b *simplego.Buffer) shapes.Shape {
	return *(*shapes.Shape)(unsafe.Add(unsafe.Pointer(b), bufShapeOff))
}
func bufFlat(b *simplego.Buffer) any { return *(*any)(unsafe.Add(unsafe.Pointer(b), bufFlatOff)) }

var (
	mu        sync.Mutex
	stocks    [backends.OpTypeLast]executor // simplego's executors, saved by Install
	installed atomic.Bool
	// Counters of ops run by the fast executors and handed back to simplego.
	fastCalls, stockCalls atomic.Int64
)

// fastExecutors are the executors Install puts in place, by op type.
func fastExecutors() map[backends.OpType]executor {
	return map[backends.OpType]executor{
		backends.OpTypeDotGeneral:     execDotGeneral,
		backends.OpTypeAdd:            binaryExecutor(backends.OpTypeAdd, addRun),
		backends.OpTypeSub:            binaryExecutor(backends.OpTypeSub, subRun),
		backends.OpTypeMul:            binaryExecutor(backends.OpTypeMul, mulRun),
		backends.OpTypeDiv:            binaryExecutor(backends.OpTypeDiv, divRun),
		backends.OpTypeMax:            binaryExecutor(backends.OpTypeMax, maxRun),
		backends.OpTypeMin:            binaryExecutor(backends.OpTypeMin, minRun),
		backends.OpTypeBroadcastInDim: execBroadcastInDim,
		backends.OpTypeTranspose:      execTranspose,
		backends.OpTypeSlice:          execSlice,
		backends.OpTypeConcatenate:    execConcatenate,
		backends.OpTypeExp:            unaryExecutor(backends.OpTypeExp, expChunk),
		backends.OpTypeErf:            unaryExecutor(backends.OpTypeErf, erfChunk),
		backends.OpTypeNeg:            unaryExecutor(backends.OpTypeNeg, negChunk),
		backends.OpTypeSqrt:           unaryExecutor(backends.OpTypeSqrt, sqrtChunk),
		backends.OpTypeRsqrt:          unaryExecutor(backends.OpTypeRsqrt, rsqrtChunk),
		backends.OpTypeAbs:            unaryExecutor(backends.OpTypeAbs, absChunk),
		backends.OpTypeSign:           unaryExecutor(backends.OpTypeSign, signChunk),
		backends.OpTypeReduceSum:      reduceExecutor(backends.OpTypeReduceSum),
		backends.OpTypeReduceMax:      reduceExecutor(backends.OpTypeReduceMax),
		backends.OpTypeReduceMin:      reduceExecutor(backends.OpTypeReduceMin),
	}
}

// Install replaces simplego's executors of the ops listed in fastExecutors.
// It returns an error (and changes nothing) when simplego's internals are not
// the expected ones. Call it before executing graphs; it is idempotent.
func Install() error {
	mu.Lock()
	defer mu.Unlock()
	if layoutErr != nil {
		return layoutErr
	}
	if installed.Load() {
		return nil
	}
	for op := range fastExecutors() {
		if nodeExecutors[op] == nil {
			return fmt.Errorf("gokernels: simplego has no executor for %s", op)
		}
	}
	for op, fn := range fastExecutors() {
		stocks[op] = nodeExecutors[op]
		nodeExecutors[op] = fn
	}
	installed.Store(true)
	return nil
}

// Uninstall restores simplego's own executors (for comparisons). Not safe
// while graphs execute.
func Uninstall() {
	mu.Lock()
	defer mu.Unlock()
	if installed.Load() {
		for op := range fastExecutors() {
			nodeExecutors[op] = stocks[op]
		}
		installed.Store(false)
	}
}

// Installed reports whether the fast executors are in place.
func Installed() bool { return installed.Load() }

// Calls returns how many DotGenerals the fast path computed and how many it
// handed back to simplego's executor.
func Calls() (fast, handedBack int64) { return fastCalls.Load(), stockCalls.Load() }

// dotParams are the fields of simplego's dotGeneralNodeData read here.
type dotParams struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
	batch, lhsCross, rhsCross, contracting             int
}

// paramFields caches, per dynamic type of node data, the field indices read.
var paramFields sync.Map // reflect.Type → *[8]int

var paramNames = [8]string{"lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes",
	"batchSize", "lhsCrossSize", "rhsCrossSize", "contractingSize"}

// readParams reads the DotGeneral parameters simplego stored in the node
// (reflection, read-only).
func readParams(data any) (p dotParams, ok bool) {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return p, false
	}
	v = v.Elem()
	idx, found := paramFields.Load(v.Type())
	if !found {
		var fields [8]int
		for i, name := range paramNames {
			f, ok := v.Type().FieldByName(name)
			if !ok || len(f.Index) != 1 {
				return p, false
			}
			wantKind := reflect.Int
			if i < 4 {
				if f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Int {
					return p, false
				}
			} else if f.Type.Kind() != wantKind {
				return p, false
			}
			fields[i] = f.Index[0]
		}
		idx, _ = paramFields.LoadOrStore(v.Type(), &fields)
	}
	fields := idx.(*[8]int)
	ints := func(f reflect.Value) []int {
		out := make([]int, f.Len())
		for i := range out {
			out[i] = int(f.Index(i).Int())
		}
		return out
	}
	p.lhsContracting = ints(v.Field(fields[0]))
	p.lhsBatch = ints(v.Field(fields[1]))
	p.rhsContracting = ints(v.Field(fields[2]))
	p.rhsBatch = ints(v.Field(fields[3]))
	p.batch = int(v.Field(fields[4]).Int())
	p.lhsCross = int(v.Field(fields[5]).Int())
	p.rhsCross = int(v.Field(fields[6]).Int())
	p.contracting = int(v.Field(fields[7]).Int())
	return p, true
}

// operandLayout expresses an operand of the given rank as a batch of strided
// cross×contracting matrices, when its batch axes lead (in order) and its
// contracting axes form one ascending run either at the end ([batch, cross,
// contracting]) or right after the batch axes ([batch, contracting, cross]).
func operandLayout(rank int, contracting, batch []int, cross, k int) (Operand, bool) {
	nb, nc := len(batch), len(contracting)
	for i, a := range batch {
		if a != i {
			return Operand{}, false
		}
	}
	run := func(start int) bool {
		for i, a := range contracting {
			if a != start+i {
				return false
			}
		}
		return true
	}
	switch {
	case run(rank - nc):
		return Operand{Batch: cross * k, Row: k, Col: 1}, true
	case run(nb):
		return Operand{Batch: cross * k, Row: 1, Col: cross}, true
	}
	return Operand{}, false
}

// execDotGeneral is the replacement DotGeneral executor. simplego's node
// computes the normalised product [batch, lhsCross, rhsCross] (a Reshape
// node follows it); so does this one.
func execDotGeneral(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	lhs, rhs := inputs[0], inputs[1]
	lhsFlat, ok1 := bufFlat(lhs).([]float32)
	rhsFlat, ok2 := bufFlat(rhs).([]float32)
	p, ok3 := readParams(nodeData(node))
	if !ok1 || !ok2 || !ok3 {
		stockCalls.Add(1)
		return stocks[backends.OpTypeDotGeneral](backend, node, inputs, owned)
	}
	a, okA := operandLayout(bufShape(lhs).Rank(), p.lhsContracting, p.lhsBatch, p.lhsCross, p.contracting)
	b, okB := operandLayout(bufShape(rhs).Rank(), p.rhsContracting, p.rhsBatch, p.rhsCross, p.contracting)
	outShape := nodeShape(node)
	if !okA || !okB || !slices.Equal(outShape.Dimensions, []int{p.batch, p.lhsCross, p.rhsCross}) {
		stockCalls.Add(1)
		return stocks[backends.OpTypeDotGeneral](backend, node, inputs, owned)
	}
	out := getBufferForShape(backend, outShape)
	a.Data, b.Data = lhsFlat, rhsFlat
	Gemm(Problem{Batch: p.batch, M: p.lhsCross, N: p.rhsCross, K: p.contracting, A: a, B: b, C: bufFlat(out).([]float32)})
	fastCalls.Add(1)
	return out, nil
}
