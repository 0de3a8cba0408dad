// Package idx reads and writes the idx format of MNIST and Fashion-MNIST,
// raw or gzip-compressed (detected from the gzip header, so the file name
// does not matter), and validates everything the header promises.
//
// An idx file is
//
//	byte 0–1   0x00 0x00                        (magic, first half)
//	byte 2     element type code                 (0x08 uint8, 0x09 int8,
//	                                              0x0B int16, 0x0C int32,
//	                                              0x0D float32, 0x0E float64)
//	byte 3     number of dimensions d ≥ 1
//	4·d bytes  the dimensions, big-endian uint32
//	data       ∏dims values, big-endian, row-major; nothing after them.
//
// A file that is truncated, too long, or has a wrong magic, type code or
// shape gives a *FormatError naming the file, the field, and what was
// expected and found.
package idx

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Type is an idx element type code (byte 2 of the file).
type Type byte

// The idx element types.
const (
	Uint8   Type = 0x08
	Int8    Type = 0x09
	Int16   Type = 0x0B
	Int32   Type = 0x0C
	Float32 Type = 0x0D
	Float64 Type = 0x0E
)

// Size is the number of bytes of one element, 0 for an unknown code.
func (t Type) Size() int {
	switch t {
	case Uint8, Int8:
		return 1
	case Int16:
		return 2
	case Int32, Float32:
		return 4
	case Float64:
		return 8
	}
	return 0
}

func (t Type) String() string {
	switch t {
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int16:
		return "int16"
	case Int32:
		return "int32"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("unknown type 0x%02X", byte(t))
}

// MaxDataBytes bounds the data a header may announce (4 GiB); larger
// headers are rejected before anything is allocated.
const MaxDataBytes = 1 << 32

// MaxDims bounds the number of dimensions.
const MaxDims = 16

// Array is the content of an idx file.
type Array struct {
	Type Type
	Dims []int
	// Data holds the ∏Dims elements as stored: big-endian, row-major,
	// Type.Size() bytes each (for Uint8 these are the values themselves).
	Data []byte
}

// Len is the number of elements, ∏Dims.
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Dims {
		n *= d
	}
	return n
}

// Float32s decodes the elements to float32 (exact for every type but
// int32 beyond ±2²⁴ and float64).
func (a *Array) Float32s() []float32 {
	out := make([]float32, a.Len())
	d := a.Data
	switch a.Type {
	case Uint8:
		for i := range out {
			out[i] = float32(d[i])
		}
	case Int8:
		for i := range out {
			out[i] = float32(int8(d[i]))
		}
	case Int16:
		for i := range out {
			out[i] = float32(int16(binary.BigEndian.Uint16(d[2*i:])))
		}
	case Int32:
		for i := range out {
			out[i] = float32(int32(binary.BigEndian.Uint32(d[4*i:])))
		}
	case Float32:
		for i := range out {
			out[i] = math.Float32frombits(binary.BigEndian.Uint32(d[4*i:]))
		}
	case Float64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.BigEndian.Uint64(d[8*i:])))
		}
	}
	return out
}

// Want is what a caller expects of a file. The zero Type accepts any type;
// a nil Dims accepts any shape; a Dims entry < 0 accepts any size along
// that axis (but the number of dimensions must match).
type Want struct {
	Type Type
	Dims []int
}

// FormatError says what is wrong with an idx file.
type FormatError struct {
	File     string // the file name given to the reader
	Field    string // "gzip stream", "magic", "type", "dimensions", "dims[1]", "data", …
	Expected string
	Found    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("idx file %s: %s: expected %s, found %s", e.File, e.Field, e.Expected, e.Found)
}

// ReadFile reads an idx file, raw or gzip-compressed, and checks it
// against want (nil: any type and shape).
func ReadFile(path string, want *Want) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("idx file %s: %w", path, err)
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return decode(f, path, want, size)
}

// Read reads an idx stream, raw or gzip-compressed; name is used in errors.
func Read(r io.Reader, name string, want *Want) (*Array, error) {
	return decode(r, name, want, -1)
}

// decode reads from r; rawSize is the stream's total length when known
// (a regular file), used to reject a wrong length before allocating.
func decode(r io.Reader, name string, want *Want, rawSize int64) (*Array, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	fail := func(field, expected, found string) error {
		return &FormatError{File: name, Field: field, Expected: expected, Found: found}
	}
	var src io.Reader = br
	compressed := false
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fail("gzip header", "a valid gzip header", err.Error())
		}
		defer zr.Close()
		src = zr
		compressed = true
	}
	streamErr := func(field, expected string, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(field, expected, "end of file (truncated)")
		}
		if compressed {
			return fail("gzip stream", "valid deflate data", err.Error())
		}
		return fmt.Errorf("idx file %s: reading %s: %w", name, field, err)
	}

	var hdr [4]byte
	if _, err := io.ReadFull(src, hdr[:]); err != nil {
		return nil, streamErr("magic", "a 4-byte magic number 0x0000TTDD", err)
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fail("magic", "first two bytes 0x00 0x00", fmt.Sprintf("0x%02X 0x%02X", hdr[0], hdr[1]))
	}
	typ := Type(hdr[2])
	if typ.Size() == 0 {
		return nil, fail("type", "a type code 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E", fmt.Sprintf("0x%02X", hdr[2]))
	}
	if want != nil && want.Type != 0 && typ != want.Type {
		return nil, fail("type", want.Type.String(), typ.String())
	}
	nd := int(hdr[3])
	if nd < 1 || nd > MaxDims {
		return nil, fail("dimensions", fmt.Sprintf("between 1 and %d dimensions", MaxDims), fmt.Sprint(nd))
	}
	if want != nil && want.Dims != nil && nd != len(want.Dims) {
		return nil, fail("dimensions", fmt.Sprintf("%d dimensions (%s)", len(want.Dims), shapeString(want.Dims)), fmt.Sprint(nd))
	}
	raw := make([]byte, 4*nd)
	if _, err := io.ReadFull(src, raw); err != nil {
		return nil, streamErr("dimensions", fmt.Sprintf("%d big-endian uint32 dimensions", nd), err)
	}
	dims := make([]int, nd)
	total := uint64(typ.Size())
	for i := range dims {
		d := binary.BigEndian.Uint32(raw[4*i:])
		dims[i] = int(d)
		if want != nil && want.Dims != nil && want.Dims[i] >= 0 && dims[i] != want.Dims[i] {
			return nil, fail(fmt.Sprintf("dims[%d]", i), fmt.Sprintf("%d (shape %s)", want.Dims[i], shapeString(want.Dims)),
				fmt.Sprintf("%d (shape so far %s)", d, shapeString(dims[:i+1])))
		}
		total *= uint64(d)
		if total > MaxDataBytes {
			return nil, fail("dimensions", fmt.Sprintf("at most %d bytes of data", uint64(MaxDataBytes)),
				fmt.Sprintf("dimensions %s of %s", shapeString(dims[:i+1]), typ))
		}
	}
	headerLen := int64(4 + 4*nd)
	want64 := int64(total)
	a := &Array{Type: typ, Dims: dims}
	expected := fmt.Sprintf("%d bytes of %s data for shape %s", total, typ, shapeString(dims))
	if !compressed && rawSize >= 0 {
		// A regular uncompressed file: its length must be exactly header + data.
		if got := rawSize - headerLen; got != want64 {
			found := fmt.Sprintf("%d bytes (file is %d bytes)", got, rawSize)
			if got < want64 {
				found += ", truncated"
			}
			return nil, fail("data", expected, found)
		}
		a.Data = make([]byte, total)
		if _, err := io.ReadFull(src, a.Data); err != nil {
			return nil, streamErr("data", expected, err)
		}
		return a, nil
	}
	// Unknown length (gzip or a stream): grow as data arrives, so a lying
	// header cannot make us allocate what the stream does not contain.
	data, err := readAtMost(src, want64)
	if err != nil {
		return nil, streamErr("data", expected, err)
	}
	if int64(len(data)) < want64 {
		return nil, fail("data", expected, fmt.Sprintf("%d bytes, truncated", len(data)))
	}
	a.Data = data
	// Nothing may follow the data; reading to EOF also checks the gzip CRC.
	var extra [1]byte
	n, err := io.ReadFull(src, extra[:])
	if n > 0 {
		rest, _ := io.Copy(io.Discard, src)
		return nil, fail("data", expected+" and then the end of the file", fmt.Sprintf("%d more bytes after the data", rest+1))
	}
	if err != nil && err != io.EOF {
		return nil, streamErr("end of data", "the end of the stream", err)
	}
	return a, nil
}

// readAtMost reads up to n bytes, growing its buffer as data arrives
// (starting at most at 64 MiB); it returns fewer bytes at EOF.
func readAtMost(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, 0, min(n, 1<<26))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), n))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Write writes a as a raw (uncompressed) idx stream.
func Write(w io.Writer, a *Array) error {
	if a.Type.Size() == 0 {
		return fmt.Errorf("idx write: unknown type 0x%02X", byte(a.Type))
	}
	if len(a.Dims) < 1 || len(a.Dims) > MaxDims {
		return fmt.Errorf("idx write: %d dimensions, want 1 to %d", len(a.Dims), MaxDims)
	}
	if want := a.Len() * a.Type.Size(); len(a.Data) != want {
		return fmt.Errorf("idx write: shape %s of %s needs %d data bytes, have %d", shapeString(a.Dims), a.Type, want, len(a.Data))
	}
	hdr := make([]byte, 4+4*len(a.Dims))
	hdr[2], hdr[3] = byte(a.Type), byte(len(a.Dims))
	for i, d := range a.Dims {
		if d < 0 || uint64(d) > math.MaxUint32 {
			return fmt.Errorf("idx write: dimension %d is %d, outside [0, 2³²)", i, d)
		}
		binary.BigEndian.PutUint32(hdr[4+4*i:], uint32(d))
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(a.Data)
	return err
}

func shapeString(dims []int) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		if d < 0 {
			parts[i] = "any"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, "×") + "]"
}
