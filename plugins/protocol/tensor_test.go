package protocol_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prism-lora/prism/plugins/proto/prismpb"
	"github.com/prism-lora/prism/plugins/protocol"
)

func tensors() []protocol.Tensor {
	f32 := make([]float32, 1000)
	for i := range f32 {
		f32[i] = float32(i) * 0.25
	}
	f32[7] = float32(math.Inf(-1))
	return []protocol.Tensor{
		{Header: &prismpb.TensorHeader{Name: "a", Dtype: prismpb.DType_FLOAT32, Shape: []int64{10, 100}}, F32: f32},
		{Header: &prismpb.TensorHeader{Name: "empty", Dtype: prismpb.DType_FLOAT64, Shape: []int64{0, 5}}, F64: []float64{}},
		{Header: &prismpb.TensorHeader{Name: "b", Dtype: prismpb.DType_FLOAT64, Shape: []int64{3}}, F64: []float64{math.Pi, math.Copysign(0, -1), 1e-300}},
		{Header: &prismpb.TensorHeader{Name: "c", Dtype: prismpb.DType_INT32, Shape: []int64{2, 2}}, I32: []int32{-1, 2, math.MaxInt32, math.MinInt32}},
		{Header: &prismpb.TensorHeader{Name: "d", Dtype: prismpb.DType_INT64, Shape: []int64{1}}, I64: []int64{math.MinInt64}},
		{Header: &prismpb.TensorHeader{Name: "e", Dtype: prismpb.DType_UINT8, Shape: []int64{5}}, U8: []uint8{0, 1, 2, 254, 255}},
	}
}

func headers(ts []protocol.Tensor) []*prismpb.TensorHeader {
	var hs []*prismpb.TensorHeader
	for _, t := range ts {
		hs = append(hs, t.Header)
	}
	return hs
}

// Tensors survive chunking bit for bit, whatever the chunk size, and the
// raw bytes are little-endian.
func TestRoundTrip(t *testing.T) {
	for _, chunk := range []int{1, 3, 4, 7, 4096, 0} {
		src := tensors()
		var chunks []*prismpb.Chunk
		if err := protocol.SendTensors(src, chunk, func(c *prismpb.Chunk) error {
			chunks = append(chunks, &prismpb.Chunk{Tensor: c.Tensor, Data: slices.Clone(c.Data)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if chunk == 4 && (chunks[0].Data[0] != 0 || len(chunks[0].Data) != 4) {
			t.Fatalf("first chunk %v", chunks[0].Data)
		}
		r, err := protocol.NewReceiver(headers(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if err := r.Add(c); err != nil {
				t.Fatalf("chunk size %d: %v", chunk, err)
			}
		}
		got, err := r.Tensors()
		if err != nil {
			t.Fatal(err)
		}
		for i := range src {
			a, b := src[i], got[i]
			if !slices.Equal(a.F32, b.F32) && !(len(a.F32) == 0 && len(b.F32) == 0) ||
				!slices.Equal(a.F64, b.F64) && !(len(a.F64) == 0 && len(b.F64) == 0) ||
				!slices.Equal(a.I32, b.I32) || !slices.Equal(a.I64, b.I64) || !slices.Equal(a.U8, b.U8) {
				t.Errorf("chunk size %d: tensor %q differs", chunk, a.Header.Name)
			}
		}
		if math.Signbit(got[2].F64[1]) != true {
			t.Errorf("-0 lost its sign")
		}
	}
	// Little-endian bytes on the wire: 0.25 as float32 is 0x3e800000.
	var first []byte
	protocol.SendTensors(tensors()[:1], 8, func(c *prismpb.Chunk) error {
		if first == nil {
			first = slices.Clone(c.Data)
		}
		return nil
	})
	if !slices.Equal(first[4:8], []byte{0x00, 0x00, 0x80, 0x3e}) {
		t.Errorf("element 1 = 0.25 on the wire is % x, want 00 00 80 3e", first[4:8])
	}
}

func TestReceiverRejectsGarbage(t *testing.T) {
	src := tensors()
	h := headers(src)
	cases := []struct {
		name   string
		chunks []*prismpb.Chunk
		err    string
	}{
		{"wrong tensor", []*prismpb.Chunk{{Tensor: 2, Data: make([]byte, 8)}}, "chunk for tensor 2 while tensor 0 (\"a\") has 0 of 4000 bytes"},
		{"overflow", []*prismpb.Chunk{{Tensor: 0, Data: make([]byte, 4001)}}, "overflows tensor \"a\""},
		{"after the end", append(fullChunks(t, src), &prismpb.Chunk{Tensor: 5, Data: []byte{1}}), "after all 6 tensors were complete"},
	}
	for _, c := range cases {
		r, err := protocol.NewReceiver(h)
		if err != nil {
			t.Fatal(err)
		}
		var got error
		for _, ch := range c.chunks {
			if got = r.Add(ch); got != nil {
				break
			}
		}
		if got == nil || !strings.Contains(got.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.name, got, c.err)
		}
	}
	r, _ := protocol.NewReceiver(h)
	r.Add(&prismpb.Chunk{Tensor: 0, Data: make([]byte, 100)})
	if _, err := r.Tensors(); err == nil || !strings.Contains(err.Error(), `tensor "a" is incomplete: 100 of 4000 bytes`) {
		t.Errorf("incomplete: %v", err)
	}
	for _, bad := range []*prismpb.TensorHeader{
		{Name: "x", Dtype: prismpb.DType_DTYPE_UNSPECIFIED, Shape: []int64{1}},
		{Name: "x", Dtype: prismpb.DType_FLOAT32, Shape: []int64{-1, 2}},
		{Name: "x", Dtype: prismpb.DType_FLOAT32, Shape: []int64{1 << 40, 1 << 40}},
		{Name: "x", Dtype: prismpb.DType_FLOAT64, Shape: []int64{1 << 34}},
	} {
		if _, err := protocol.NewReceiver([]*prismpb.TensorHeader{bad}); err == nil {
			t.Errorf("header %v accepted", bad)
		}
	}
	// A sender whose data does not fill its shape is refused before sending.
	err := protocol.SendTensors([]protocol.Tensor{{Header: &prismpb.TensorHeader{Name: "short", Dtype: prismpb.DType_FLOAT32, Shape: []int64{2, 2}}, F32: []float32{1}}}, 0,
		func(*prismpb.Chunk) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "needs 4 elements, holds 1") {
		t.Errorf("short tensor: %v", err)
	}
}

func fullChunks(t *testing.T, ts []protocol.Tensor) []*prismpb.Chunk {
	var out []*prismpb.Chunk
	if err := protocol.SendTensors(ts, 0, func(c *prismpb.Chunk) error {
		out = append(out, &prismpb.Chunk{Tensor: c.Tensor, Data: slices.Clone(c.Data)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzReceiver: arbitrary headers and chunks never panic the receiver.
func FuzzReceiver(f *testing.F) {
	f.Add(int64(3), int64(4), uint32(0), []byte("0123456789ab"), uint32(0), []byte("xyz"))
	f.Fuzz(func(t *testing.T, d0, d1 int64, t1 uint32, b1 []byte, t2 uint32, b2 []byte) {
		r, err := protocol.NewReceiver([]*prismpb.TensorHeader{
			{Name: "a", Dtype: prismpb.DType_FLOAT32, Shape: []int64{d0 % 64, d1 % 64}},
			{Name: "b", Dtype: prismpb.DType_UINT8, Shape: []int64{d1 % 16}},
		})
		if err != nil {
			return
		}
		if r.Add(&prismpb.Chunk{Tensor: t1, Data: b1}) == nil {
			r.Add(&prismpb.Chunk{Tensor: t2, Data: b2})
		}
		r.Tensors()
	})
}
