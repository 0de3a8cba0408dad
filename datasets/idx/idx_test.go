package idx

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encode returns the raw idx bytes of a.
func encode(t testing.TB, a *Array) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, a); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// images is a small valid uint8 array 3×2×2 with values 0…11.
func images() *Array {
	a := &Array{Type: Uint8, Dims: []int{3, 2, 2}, Data: make([]byte, 12)}
	for i := range a.Data {
		a.Data[i] = byte(i)
	}
	return a
}

func TestRoundTripEveryType(t *testing.T) {
	for _, typ := range []Type{Uint8, Int8, Int16, Int32, Float32, Float64} {
		a := &Array{Type: typ, Dims: []int{2, 3}, Data: make([]byte, 6*typ.Size())}
		for i := range a.Data {
			a.Data[i] = byte(7*i + 1)
		}
		raw := encode(t, a)
		for name, stream := range map[string][]byte{"raw": raw, "gzip": gz(t, raw)} {
			got, err := Read(bytes.NewReader(stream), name, &Want{Type: typ, Dims: []int{2, -1}})
			if err != nil {
				t.Fatalf("%s %s: %v", typ, name, err)
			}
			if got.Type != typ || len(got.Dims) != 2 || got.Dims[0] != 2 || got.Dims[1] != 3 || !bytes.Equal(got.Data, a.Data) {
				t.Fatalf("%s %s: round trip gave %v %v %x, want %x", typ, name, got.Type, got.Dims, got.Data, a.Data)
			}
		}
	}
}

func TestFloat32sDecodesBigEndian(t *testing.T) {
	cases := []struct {
		typ  Type
		data []byte
		want float32
	}{
		{Uint8, []byte{200}, 200},
		{Int8, []byte{0xff}, -1},
		{Int16, []byte{0xff, 0xfe}, -2},
		{Int32, []byte{0, 1, 0, 0}, 65536},
		{Float32, []byte{0x3f, 0xc0, 0, 0}, 1.5},
		{Float64, []byte{0xc0, 0x04, 0, 0, 0, 0, 0, 0}, -2.5},
	}
	for _, c := range cases {
		a := &Array{Type: c.typ, Dims: []int{1}, Data: c.data}
		if got := a.Float32s(); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s % x: got %v, want %v", c.typ, c.data, got, c.want)
		}
	}
}

func TestCorruptInputs(t *testing.T) {
	good := encode(t, images())
	mutate := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	want := &Want{Type: Uint8, Dims: []int{-1, 2, 2}}
	cases := []struct {
		name      string
		data      []byte
		want      *Want
		field     string // FormatError.Field
		substr    string // must appear in the message
		gzipToo   bool   // also check the gzip-compressed variant
		rawOnlyOK bool
	}{
		{name: "empty", data: nil, field: "magic", substr: "truncated"},
		{name: "short magic", data: []byte{0, 0, 8}, field: "magic", substr: "truncated", gzipToo: true},
		{name: "bad magic", data: mutate(func(b []byte) []byte { b[0] = 0x12; return b }), field: "magic", substr: "0x12 0x00", gzipToo: true},
		{name: "text file", data: []byte("hello, world\n"), field: "magic", substr: "0x68 0x65"},
		{name: "unknown type", data: mutate(func(b []byte) []byte { b[2] = 0x07; return b }), field: "type", substr: "0x07", gzipToo: true},
		{name: "wrong type", data: mutate(func(b []byte) []byte { b[2] = byte(Int8); return b }), want: want, field: "type", substr: "expected uint8, found int8"},
		{name: "zero dims", data: []byte{0, 0, 8, 0}, field: "dimensions", substr: "found 0"},
		{name: "wrong dim count", data: encode(t, &Array{Type: Uint8, Dims: []int{12}, Data: make([]byte, 12)}), want: want, field: "dimensions", substr: "3 dimensions"},
		{name: "wrong dim size", data: mutate(func(b []byte) []byte { b[11] = 3; return b }), want: want, field: "dims[1]", substr: "expected 2"},
		{name: "truncated dims", data: good[:9], field: "dimensions", substr: "truncated", gzipToo: true},
		{name: "truncated data", data: good[:len(good)-1], field: "data", substr: "truncated", gzipToo: true},
		{name: "header only", data: good[:16], field: "data", substr: "12 bytes of uint8 data for shape [3×2×2]", gzipToo: true},
		{name: "trailing byte", data: append(append([]byte(nil), good...), 0), field: "data", substr: "1 more bytes", gzipToo: true},
		{name: "huge header", data: []byte{0, 0, 0x0E, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, field: "dimensions", substr: "at most"},
	}
	for _, c := range cases {
		variants := map[string][]byte{"raw": c.data}
		if c.gzipToo {
			variants["gzip"] = gz(t, c.data)
		}
		for kind, data := range variants {
			_, err := Read(bytes.NewReader(data), "bad.idx", c.want)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("%s (%s): got error %v, want a *FormatError", c.name, kind, err)
				continue
			}
			if fe.Field != c.field || fe.File != "bad.idx" || !strings.Contains(err.Error(), c.substr) {
				t.Errorf("%s (%s): got %q (field %q), want field %q mentioning %q", c.name, kind, err, fe.Field, c.field, c.substr)
			}
		}
	}
}

func TestCorruptGzipStream(t *testing.T) {
	z := gz(t, encode(t, images()))
	// Flip a bit of the CRC-32 in the trailer: the data decodes but the
	// checksum does not match.
	crc := append([]byte(nil), z...)
	crc[len(crc)-8] ^= 1
	if _, err := Read(bytes.NewReader(crc), "crc.gz", nil); err == nil || !strings.Contains(err.Error(), "crc.gz") || !strings.Contains(err.Error(), "gzip stream") {
		t.Errorf("bad CRC: got %v, want a gzip stream error naming the file", err)
	}
	// Cut the compressed stream in the middle.
	if _, err := Read(bytes.NewReader(z[:len(z)/2]), "cut.gz", nil); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("cut gzip: got %v, want truncated", err)
	}
	// A gzip header with nothing valid after it.
	if _, err := Read(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}), "hdr.gz", nil); err == nil || !strings.Contains(err.Error(), "hdr.gz") {
		t.Errorf("broken gzip header: got %v", err)
	}
}

func TestReadFileChecksLengthFromSize(t *testing.T) {
	dir := t.TempDir()
	good := encode(t, images())
	ok := filepath.Join(dir, "ok-idx3-ubyte")
	short := filepath.Join(dir, "short-idx3-ubyte")
	long := filepath.Join(dir, "long-idx3-ubyte")
	zipped := filepath.Join(dir, "anything.bin") // gzip detected by header, not by name
	for p, b := range map[string][]byte{ok: good, short: good[:len(good)-3], long: append(append([]byte(nil), good...), 1, 2), zipped: gz(t, good)} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{ok, zipped} {
		a, err := ReadFile(p, &Want{Type: Uint8, Dims: []int{3, 2, 2}})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if a.Len() != 12 || a.Data[11] != 11 {
			t.Fatalf("%s: got %v %v", p, a.Dims, a.Data)
		}
	}
	if _, err := ReadFile(short, nil); err == nil || !strings.Contains(err.Error(), short) ||
		!strings.Contains(err.Error(), "expected 12 bytes") || !strings.Contains(err.Error(), "found 9 bytes (file is 25 bytes), truncated") {
		t.Errorf("short file: got %v", err)
	}
	if _, err := ReadFile(long, nil); err == nil || !strings.Contains(err.Error(), "found 14 bytes") {
		t.Errorf("long file: got %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), nil); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: got %v", err)
	}
}

func TestWriteRejectsInconsistentArrays(t *testing.T) {
	var buf bytes.Buffer
	for _, a := range []*Array{
		{Type: 0x42, Dims: []int{1}, Data: []byte{0}},
		{Type: Uint8, Dims: nil, Data: nil},
		{Type: Int16, Dims: []int{2}, Data: []byte{0, 0, 0}},
	} {
		if err := Write(&buf, a); err == nil {
			t.Errorf("Write(%v %v, %d bytes) succeeded", a.Type, a.Dims, len(a.Data))
		}
	}
}

// FuzzReadIDX: no input makes the reader panic, and whatever it accepts is
// self-consistent and survives a round trip.
func FuzzReadIDX(f *testing.F) {
	good := encode(f, images())
	f.Add(good)
	f.Add(gz(f, good))
	f.Add(good[:10])
	f.Add([]byte{0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3f, 0x80, 0, 0})
	f.Add([]byte{0, 0, 0x0E, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Read(bytes.NewReader(data), "fuzz", nil)
		if err != nil {
			if a != nil {
				t.Fatal("error with a non-nil array")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		if len(a.Data) != a.Len()*a.Type.Size() {
			t.Fatalf("accepted %v %v with %d data bytes", a.Type, a.Dims, len(a.Data))
		}
		_ = a.Float32s()
		again, err := Read(bytes.NewReader(encode(t, a)), "again", nil)
		if err != nil || !bytes.Equal(again.Data, a.Data) || again.Type != a.Type || len(again.Dims) != len(a.Dims) {
			t.Fatalf("round trip of an accepted array failed: %v", err)
		}
	})
}
