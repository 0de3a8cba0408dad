package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/prism-lora/prism/plugins/proto/prismpb"
)

// ChunkBytes is how many bytes of tensor data one Chunk frame carries (the
// last chunk of a tensor may carry fewer). Senders may use any size up to
// MaxChunkBytes; receivers accept any.
const ChunkBytes = 1 << 20

// MaxChunkBytes bounds the data of one Chunk frame.
const MaxChunkBytes = 16 << 20

// MaxTensorBytes bounds one announced tensor, so that a garbage header
// cannot make the receiver allocate without limit.
const MaxTensorBytes = 1 << 36

// hostLittleEndian is true on little-endian machines, where a []float32's
// memory already is the wire format and is sent without conversion.
var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// DTypeSize is the size in bytes of one element of dtype d (0 if unknown).
func DTypeSize(d prismpb.DType) int {
	switch d {
	case prismpb.DType_FLOAT32, prismpb.DType_INT32:
		return 4
	case prismpb.DType_FLOAT64, prismpb.DType_INT64:
		return 8
	case prismpb.DType_UINT8:
		return 1
	}
	return 0
}

// Tensor is an announced tensor and its data: exactly one of the typed
// slices, matching Header.Dtype, holds product(Header.Shape) elements.
type Tensor struct {
	Header *prismpb.TensorHeader
	F32    []float32
	F64    []float64
	I32    []int32
	I64    []int64
	U8     []uint8
}

// NumElements is the product of the shape (1 for a scalar).
func NumElements(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n *= d
	}
	return n, nil
}

// length is the number of elements held by the typed slice of t's dtype.
func (t *Tensor) length() int {
	switch t.Header.GetDtype() {
	case prismpb.DType_FLOAT32:
		return len(t.F32)
	case prismpb.DType_FLOAT64:
		return len(t.F64)
	case prismpb.DType_INT32:
		return len(t.I32)
	case prismpb.DType_INT64:
		return len(t.I64)
	case prismpb.DType_UINT8:
		return len(t.U8)
	}
	return -1
}

// bytesView returns t's data as little-endian bytes: the slice's own memory
// on a little-endian machine, a converted copy otherwise.
func (t *Tensor) bytesView() []byte {
	switch t.Header.GetDtype() {
	case prismpb.DType_FLOAT32:
		if hostLittleEndian {
			return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.F32))), 4*len(t.F32))
		}
		b := make([]byte, 4*len(t.F32))
		for i, v := range t.F32 {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	case prismpb.DType_FLOAT64:
		if hostLittleEndian {
			return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.F64))), 8*len(t.F64))
		}
		b := make([]byte, 8*len(t.F64))
		for i, v := range t.F64 {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b
	case prismpb.DType_INT32:
		if hostLittleEndian {
			return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.I32))), 4*len(t.I32))
		}
		b := make([]byte, 4*len(t.I32))
		for i, v := range t.I32 {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
		return b
	case prismpb.DType_INT64:
		if hostLittleEndian {
			return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t.I64))), 8*len(t.I64))
		}
		b := make([]byte, 8*len(t.I64))
		for i, v := range t.I64 {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
		return b
	case prismpb.DType_UINT8:
		return t.U8
	}
	return nil
}

// SendTensors streams the data of ts, in order, as chunks of at most
// chunkBytes bytes (ChunkBytes if chunkBytes ≤ 0), calling send for each.
// Tensor i's chunks carry index i. It checks that each tensor holds exactly
// as many elements as its header's shape says.
func SendTensors(ts []Tensor, chunkBytes int, send func(*prismpb.Chunk) error) error {
	if chunkBytes <= 0 {
		chunkBytes = ChunkBytes
	}
	for i := range ts {
		t := &ts[i]
		n, err := NumElements(t.Header.GetShape())
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Header.GetName(), err)
		}
		if got := t.length(); int64(got) != n {
			return fmt.Errorf("tensor %q: %s shape %v needs %d elements, holds %d",
				t.Header.GetName(), t.Header.GetDtype(), t.Header.GetShape(), n, got)
		}
		data := t.bytesView()
		for off := 0; off < len(data); off += chunkBytes {
			end := min(off+chunkBytes, len(data))
			if err := send(&prismpb.Chunk{Tensor: uint32(i), Data: data[off:end]}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Receiver reassembles announced tensors from their chunks, decoding the
// bytes straight into typed slices it allocates once.
type Receiver struct {
	tensors []Tensor
	views   [][]byte // little-endian bytes of each tensor (its memory, or a staging buffer)
	filled  []int64
	current int
}

// NewReceiver prepares to receive the tensors announced by headers. It
// rejects unknown dtypes, negative or overflowing shapes, and tensors
// larger than MaxTensorBytes. Where reuse[i] has the dtype's slice with
// enough capacity, tensor i is received into it instead of a new slice.
func NewReceiver(headers []*prismpb.TensorHeader, reuse ...Tensor) (*Receiver, error) {
	r := &Receiver{
		tensors: make([]Tensor, len(headers)),
		views:   make([][]byte, len(headers)),
		filled:  make([]int64, len(headers)),
	}
	for i, h := range headers {
		size := DTypeSize(h.GetDtype())
		if size == 0 {
			return nil, fmt.Errorf("tensor %q: unknown dtype %v", h.GetName(), h.GetDtype())
		}
		n, err := NumElements(h.GetShape())
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", h.GetName(), err)
		}
		if n > MaxTensorBytes/int64(size) {
			return nil, fmt.Errorf("tensor %q: shape %v is larger than the %d-byte limit", h.GetName(), h.GetShape(), int64(MaxTensorBytes))
		}
		t := Tensor{Header: h}
		var old Tensor
		if i < len(reuse) {
			old = reuse[i]
		}
		switch h.GetDtype() {
		case prismpb.DType_FLOAT32:
			t.F32 = grow(old.F32, n)
		case prismpb.DType_FLOAT64:
			t.F64 = grow(old.F64, n)
		case prismpb.DType_INT32:
			t.I32 = grow(old.I32, n)
		case prismpb.DType_INT64:
			t.I64 = grow(old.I64, n)
		case prismpb.DType_UINT8:
			t.U8 = grow(old.U8, n)
		}
		r.tensors[i] = t
		if hostLittleEndian || h.GetDtype() == prismpb.DType_UINT8 {
			r.views[i] = r.tensors[i].bytesView()
		} else {
			r.views[i] = make([]byte, n*int64(size))
		}
	}
	r.skipComplete()
	return r, nil
}

// skipComplete advances past tensors that are complete (including empty ones).
func (r *Receiver) skipComplete() {
	for r.current < len(r.tensors) && r.filled[r.current] == int64(len(r.views[r.current])) {
		r.current++
	}
}

// Add takes the next chunk. Chunks must come in order: all of tensor 0's
// bytes, then tensor 1's, and so on; a chunk for another tensor, or bytes
// beyond a tensor's size, is an error.
func (r *Receiver) Add(c *prismpb.Chunk) error {
	if r.current >= len(r.tensors) {
		return fmt.Errorf("chunk of %d bytes for tensor %d after all %d tensors were complete", len(c.GetData()), c.GetTensor(), len(r.tensors))
	}
	if int(c.GetTensor()) != r.current {
		h := r.tensors[r.current].Header
		return fmt.Errorf("chunk for tensor %d while tensor %d (%q) has %d of %d bytes", c.GetTensor(), r.current, h.GetName(), r.filled[r.current], len(r.views[r.current]))
	}
	view := r.views[r.current]
	off := r.filled[r.current]
	if int64(len(c.GetData())) > int64(len(view))-off {
		return fmt.Errorf("chunk of %d bytes overflows tensor %q (%d of %d bytes already)", len(c.GetData()), r.tensors[r.current].Header.GetName(), off, len(view))
	}
	copy(view[off:], c.GetData())
	r.filled[r.current] += int64(len(c.GetData()))
	r.skipComplete()
	return nil
}

// Complete reports whether every tensor has all its bytes.
func (r *Receiver) Complete() bool { return r.current >= len(r.tensors) }

// Tensors returns the received tensors once all are complete, or an error
// naming the first incomplete one.
func (r *Receiver) Tensors() ([]Tensor, error) {
	if !r.Complete() {
		h := r.tensors[r.current].Header
		return nil, fmt.Errorf("tensor %q is incomplete: %d of %d bytes", h.GetName(), r.filled[r.current], len(r.views[r.current]))
	}
	if !hostLittleEndian {
		for i := range r.tensors {
			decodeInto(&r.tensors[i], r.views[i])
		}
	}
	return r.tensors, nil
}

// decodeInto converts little-endian bytes into t's typed slice (big-endian hosts only).
func decodeInto(t *Tensor, b []byte) {
	switch t.Header.GetDtype() {
	case prismpb.DType_FLOAT32:
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case prismpb.DType_FLOAT64:
		for i := range t.F64 {
			t.F64[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case prismpb.DType_INT32:
		for i := range t.I32 {
			t.I32[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case prismpb.DType_INT64:
		for i := range t.I64 {
			t.I64[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
}

// grow returns s resized to n elements, reusing its memory when it can.
func grow[T any](s []T, n int64) []T {
	if int64(cap(s)) >= n {
		return s[:n]
	}
	return make([]T, n)
}
