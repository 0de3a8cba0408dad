package safetensors

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzRead: any byte string either fails with an error or opens, and then
// every tensor can be read without panicking, its size matches its header
// entry, and writing the tensors back reproduces a file that reads the same.
func FuzzRead(f *testing.F) {
	f.Add(file(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, f32le(0, 1, 2, 3, 4, 5)))
	f.Add(file(`{"__metadata__":{"a":"b"},"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, u16le(0x3c00, 0x7c00)))
	f.Add(file(`{"b":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},"d":{"dtype":"F64","shape":[],"data_offsets":[2,10]}}`, u16le(0x3f80), f64le(1)))
	f.Add(file(`{"i":{"dtype":"I64","shape":[0],"data_offsets":[0,0]}}`))
	f.Add(file(`{}`))
	f.Add([]byte{})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("in-memory read failed with a non-format error: %v", err)
			}
			return
		}
		var tensors []Tensor
		for _, info := range r.Tensors() {
			raw, err := r.Raw(info.Name)
			if err != nil {
				t.Fatalf("Raw(%q) after a successful open: %v", info.Name, err)
			}
			if int64(len(raw)) != info.End-info.Begin || int64(len(raw)) != info.NumBytes() {
				t.Fatalf("Raw(%q): %d bytes for entry %+v", info.Name, len(raw), info)
			}
			if info.DType.IsFloat() {
				v, err := r.Float64s(info.Name)
				if err != nil || int64(len(v)) != info.NumElements() {
					t.Fatalf("Float64s(%q): %d values, %v", info.Name, len(v), err)
				}
			}
			tensors = append(tensors, FromRaw(info.Name, info.DType, info.Shape, raw))
		}
		var out bytes.Buffer
		if err := Write(&out, tensors, r.Metadata()); err != nil {
			t.Fatalf("rewriting a valid file: %v", err)
		}
		r2, err := NewReader(bytes.NewReader(out.Bytes()), int64(out.Len()), "rewritten")
		if err != nil {
			t.Fatalf("rewritten file does not read: %v", err)
		}
		if len(r2.Tensors()) != len(tensors) || len(r2.Metadata()) != len(r.Metadata()) {
			t.Fatal("rewritten file lost tensors or metadata")
		}
		for _, tn := range tensors {
			raw, err := r2.Raw(tn.Name)
			if err != nil || !bytes.Equal(raw, []byte(tn.data.(rawBytes))) {
				t.Fatalf("rewritten tensor %q differs: %v", tn.Name, err)
			}
		}
	})
}
