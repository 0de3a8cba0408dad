package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// file assembles a safetensors file by hand: the 8-byte little-endian
// length of header, header as given (padding included), then data.
func file(header string, data ...[]byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	for _, d := range data {
		b.Write(d)
	}
	return b.Bytes()
}

func f32le(values ...float32) []byte {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func f64le(values ...float64) []byte {
	b := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

func u16le(values ...uint16) []byte {
	b := make([]byte, 2*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func writeBytes(t *testing.T, tensors []Tensor, metadata map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, tensors, metadata); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return b.Bytes()
}

// The reference implementation's serialisation of one F32 tensor of shape
// [1,2,3] holding 0..5 under the name "attn.0": a 64-byte header that needs
// no padding, then the 24 data bytes.
func TestWriteMatchesReferenceUnpadded(t *testing.T) {
	want := file(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, f32le(0, 1, 2, 3, 4, 5))
	if len(want) != 8+64+24 || want[0] != 64 {
		t.Fatalf("hand-built reference has the wrong size: %d", len(want))
	}
	got := writeBytes(t, []Tensor{FromFloats("attn.0", []int{1, 2, 3}, []float32{0, 1, 2, 3, 4, 5})}, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ from the reference:\n got %q\nwant %q", got, want)
	}
}

// A 65-byte header is padded with 7 spaces to 72, so the data starts at an
// 8-byte boundary (the reference's forced-alignment case).
func TestWriteMatchesReferencePadded(t *testing.T) {
	want := file(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}`+"       ", f32le(0, 1, 2, 3, 4, 5))
	got := writeBytes(t, []Tensor{FromFloats("attn0", []int{1, 1, 2, 3}, []float32{0, 1, 2, 3, 4, 5})}, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ from the reference:\n got %q\nwant %q", got, want)
	}
	if (8+len(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}`+"       "))%8 != 0 {
		t.Fatal("reference data start is not 8-byte aligned")
	}
}

// No tensors: "{}" padded to 8; with metadata, "__metadata__" alone.
func TestWriteMatchesReferenceEmpty(t *testing.T) {
	if got, want := writeBytes(t, nil, nil), file("{}      "); !bytes.Equal(got, want) {
		t.Fatalf("empty file: got %q want %q", got, want)
	}
	got := writeBytes(t, nil, map[string]string{"framework": "pt"})
	if want := file(`{"__metadata__":{"framework":"pt"}}` + "     "); !bytes.Equal(got, want) {
		t.Fatalf("metadata only: got %q want %q", got, want)
	}
}

// Several dtypes: F64 before F32 (descending alignment), names ascending
// within a dtype, metadata first with sorted keys; strings escaped as
// serde_json does (quote, backslash, control characters; UTF-8 kept).
func TestWriteOrderAndEscaping(t *testing.T) {
	tensors := []Tensor{
		FromFloats("z.weight", []int{2}, []float32{1, 2}),
		FromFloats("a.weight", []int{1}, []float32{3}),
		FromFloats("m.bias", []int{1}, []float64{4}),
		FromRaw("ids", I64, []int{1}, []byte{5, 0, 0, 0, 0, 0, 0, 0}),
		FromRaw("mask", U8, []int{3}, []byte{1, 0, 1}),
	}
	meta := map[string]string{"b": "x\"y\\z\n\t\x01", "a": "π/<&>"}
	header := `{"__metadata__":{"a":"π/<&>","b":"x\"y\\z\n\t\u0001"},` +
		`"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},` +
		`"m.bias":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},` +
		`"a.weight":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},` +
		`"z.weight":{"dtype":"F32","shape":[2],"data_offsets":[20,28]},` +
		`"mask":{"dtype":"U8","shape":[3],"data_offsets":[28,31]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	want := file(header, []byte{5, 0, 0, 0, 0, 0, 0, 0}, f64le(4), f32le(3), f32le(1, 2), []byte{1, 0, 1})
	got := writeBytes(t, tensors, meta)
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ:\n got %q\nwant %q", got, want)
	}
	// Deterministic: the same input always gives the same bytes.
	for range 5 {
		if again := writeBytes(t, tensors, meta); !bytes.Equal(again, got) {
			t.Fatal("output is not deterministic")
		}
	}
	r, err := NewReader(bytes.NewReader(got), int64(len(got)), "mixed")
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Metadata(); m["a"] != meta["a"] || m["b"] != meta["b"] || len(m) != 2 {
		t.Fatalf("metadata read back %q, want %q", m, meta)
	}
}

// A file written by another tool: header entries in no particular order,
// spaces and a newline inside the JSON, padding at the end, F16, BF16 and
// I32 tensors, a scalar and an empty tensor, an unknown extra field.
func TestReadHandBuiltFile(t *testing.T) {
	header := `{ "b16": {"dtype": "BF16", "shape": [2], "data_offsets": [24, 28]},
	"__metadata__": {"format": "pt"},
	"half": {"shape": [2, 2], "dtype": "F16", "data_offsets": [16, 24], "note": {"ignored": [1, 2]}},
	"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
	"s": {"dtype": "F64", "shape": [], "data_offsets": [28, 36]},
	"empty": {"dtype": "F32", "shape": [0, 5], "data_offsets": [36, 36]},
	"i": {"dtype": "I32", "shape": [1], "data_offsets": [36, 40]} }    `
	data := file(header,
		f32le(1.5, -2, 3.25, 1e-3),
		u16le(0x3c00, 0xc000, 0x7bff, 0x0001), // 1, -2, 65504, 2⁻²⁴
		u16le(0x3f80, 0xc0a0),                 // bf16 1, -5
		f64le(math.Pi),
		[]byte{0xff, 0xff, 0xff, 0x7f})
	path := filepath.Join(t.TempDir(), "hand.safetensors")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := r.Names(), []string{"w", "half", "b16", "s", "empty", "i"}; !slices.Equal(got, want) {
		t.Fatalf("data order %v, want %v", got, want)
	}
	if r.Metadata()["format"] != "pt" {
		t.Fatalf("metadata %v", r.Metadata())
	}
	check32 := func(name string, want ...float32) {
		t.Helper()
		got, err := r.Float32s(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		got64, err := r.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got64[i] != float64(want[i]) {
				t.Fatalf("%s as float64 = %v, want %v", name, got64, want)
			}
		}
	}
	check32("w", 1.5, -2, 3.25, 1e-3)
	check32("half", 1, -2, 65504, float32(math.Ldexp(1, -24)))
	check32("b16", 1, -5)
	check32("empty")
	if s, err := r.Float64s("s"); err != nil || len(s) != 1 || s[0] != math.Pi {
		t.Fatalf("scalar = %v, %v", s, err)
	}
	if _, err := r.Float32s("s"); err == nil {
		t.Fatal("reading F64 as float32 must be refused, not rounded")
	}
	raw, err := r.Raw("i")
	if err != nil || !bytes.Equal(raw, []byte{0xff, 0xff, 0xff, 0x7f}) {
		t.Fatalf("raw I32 = %v, %v", raw, err)
	}
	if _, err := r.Float64s("i"); err == nil {
		t.Fatal("I32 read as float64 must be an error")
	}
	info, err := r.Info("half")
	if err != nil || info.DType != F16 || !slices.Equal(info.Shape, []int{2, 2}) || info.Begin != 16 || info.End != 24 {
		t.Fatalf("info = %+v, %v", info, err)
	}
	if r.DataStart() != int64(8+len(header)) {
		t.Fatalf("DataStart %d, want %d", r.DataStart(), 8+len(header))
	}
	if _, err := r.Info("missing"); err == nil {
		t.Fatal("unknown tensor must be an error")
	}
}
