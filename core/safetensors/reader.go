package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"unsafe"
)

// chunkSize bounds the scratch buffer used to decode tensor data: values are
// read and converted chunk by chunk straight into the destination slice.
const chunkSize = 1 << 20

// Reader gives access to the tensors of one safetensors file. Only the
// header is held in memory; each read fetches one tensor's bytes with
// positioned reads, so a Reader may be used from several goroutines at once.
type Reader struct {
	name      string
	src       io.ReaderAt
	closer    io.Closer
	dataStart int64 // 8 + header length
	tensors   []Info
	index     map[string]int
	metadata  map[string]string
}

// Open opens the safetensors file at path, reading and validating its
// header. The tensors are read later, on demand. Close the Reader when done.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &FormatError{File: path, Problem: "not a regular file"}
	}
	r, err := NewReader(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads and validates the header of the safetensors content of
// src, which holds size bytes. name identifies the content in errors.
func NewReader(src io.ReaderAt, size int64, name string) (*Reader, error) {
	fail := func(format string, args ...any) error {
		return &FormatError{File: name, Problem: fmt.Sprintf(format, args...)}
	}
	if size < 8 {
		return nil, fail("truncated: %d bytes, but the 8-byte header length alone needs 8", size)
	}
	var prefix [8]byte
	if err := readFull(src, prefix[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors file %s: reading the header length: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderSize {
		return nil, fail("header length %d exceeds the limit of %d bytes (not a safetensors file?)", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fail("truncated: the header length says %d bytes but only %d follow the 8-byte prefix", n, size-8)
	}
	header := make([]byte, n)
	if err := readFull(src, header, 8); err != nil {
		return nil, fmt.Errorf("safetensors file %s: reading the header: %w", name, err)
	}
	dataStart := 8 + int64(n)
	tensors, metadata, err := parseHeader(name, header, size-dataStart)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(tensors))
	for i, t := range tensors {
		index[t.Name] = i
	}
	return &Reader{name: name, src: src, dataStart: dataStart, tensors: tensors, index: index, metadata: metadata}, nil
}

func readFull(src io.ReaderAt, buf []byte, off int64) error {
	n, err := src.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Close closes the file opened by Open (nothing for a NewReader).
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// Name is the path given to Open (or the name given to NewReader).
func (r *Reader) Name() string { return r.name }

// DataStart is the file offset of the data section (8 + header length);
// a tensor's bytes lie at [DataStart+Begin, DataStart+End).
func (r *Reader) DataStart() int64 { return r.dataStart }

// Tensors lists the header entries in data order (by offset).
func (r *Reader) Tensors() []Info {
	out := make([]Info, len(r.tensors))
	for i, t := range r.tensors {
		out[i] = Info{Spec: t.clone(), Begin: t.Begin, End: t.End}
	}
	return out
}

// Names lists the tensor names in data order.
func (r *Reader) Names() []string {
	names := make([]string, len(r.tensors))
	for i, t := range r.tensors {
		names[i] = t.Name
	}
	return names
}

// Metadata returns a copy of the header's "__metadata__" map (nil when the
// file has none).
func (r *Reader) Metadata() map[string]string { return maps.Clone(r.metadata) }

// Info returns the header entry of the named tensor.
func (r *Reader) Info(name string) (Info, error) {
	i, ok := r.index[name]
	if !ok {
		return Info{}, fmt.Errorf("safetensors file %s: no tensor %q (the file has %d tensors)", r.name, name, len(r.tensors))
	}
	t := r.tensors[i]
	return Info{Spec: t.clone(), Begin: t.Begin, End: t.End}, nil
}

// Raw returns the named tensor's bytes as stored: little-endian elements of
// its dtype, row-major.
func (r *Reader) Raw(name string) ([]byte, error) {
	t, err := r.Info(name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, t.End-t.Begin)
	if err := readFull(r.src, buf, r.dataStart+t.Begin); err != nil {
		return nil, r.readError(t, err)
	}
	return buf, nil
}

func (r *Reader) readError(t Info, err error) error {
	return fmt.Errorf("safetensors file %s: tensor %q: reading %d bytes at offset %d: %w",
		r.name, t.Name, t.End-t.Begin, r.dataStart+t.Begin, err)
}

// Float32s returns the named tensor's values as float32, row-major. F32 is
// read as is; F16 and BF16 are widened exactly. F64 is refused rather than
// rounded: read it with Float64s.
func (r *Reader) Float32s(name string) ([]float32, error) {
	t, err := r.Info(name)
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.NumElements())
	switch t.DType {
	case F32:
		if littleEndianHost {
			err = r.readInto(t, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), 4*len(out)))
		} else {
			err = decode(r, t, 4, out, func(dst []float32, src []byte) {
				for i := range dst {
					dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
				}
			})
		}
	case F16:
		err = decode(r, t, 2, out, func(dst []float32, src []byte) {
			for i := range dst {
				dst[i] = HalfToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
			}
		})
	case BF16:
		err = decode(r, t, 2, out, func(dst []float32, src []byte) {
			for i := range dst {
				dst[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
			}
		})
	default:
		return nil, r.dtypeError(t, "float32", "F32, F16 or BF16")
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Float64s returns the named tensor's values as float64, row-major: F64 as
// is, F32, F16 and BF16 widened exactly.
func (r *Reader) Float64s(name string) ([]float64, error) {
	t, err := r.Info(name)
	if err != nil {
		return nil, err
	}
	out := make([]float64, t.NumElements())
	switch t.DType {
	case F64:
		if littleEndianHost {
			err = r.readInto(t, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), 8*len(out)))
		} else {
			err = decode(r, t, 8, out, func(dst []float64, src []byte) {
				for i := range dst {
					dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))
				}
			})
		}
	case F32:
		err = decode(r, t, 4, out, func(dst []float64, src []byte) {
			for i := range dst {
				dst[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
			}
		})
	case F16:
		err = decode(r, t, 2, out, func(dst []float64, src []byte) {
			for i := range dst {
				dst[i] = float64(HalfToFloat32(binary.LittleEndian.Uint16(src[2*i:])))
			}
		})
	case BF16:
		err = decode(r, t, 2, out, func(dst []float64, src []byte) {
			for i := range dst {
				dst[i] = float64(BFloat16ToFloat32(binary.LittleEndian.Uint16(src[2*i:])))
			}
		})
	default:
		return nil, r.dtypeError(t, "float64", "F64, F32, F16 or BF16")
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Reader) dtypeError(t Info, as, want string) error {
	return fmt.Errorf("safetensors file %s: tensor %q has dtype %s; reading it as %s needs %s (use Raw for the bytes)",
		r.name, t.Name, t.DType, as, want)
}

// littleEndianHost is true when the machine stores numbers as the file
// does, so F32/F64 bytes can be read straight into the result's memory.
var littleEndianHost = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// readInto reads t's bytes into dst (len = t's byte size).
func (r *Reader) readInto(t Info, dst []byte) error {
	if err := readFull(r.src, dst, r.dataStart+t.Begin); err != nil {
		return r.readError(t, err)
	}
	return nil
}

// decode reads t's bytes chunk by chunk into a bounded scratch buffer and
// converts each chunk into the matching part of out (size bytes per value).
func decode[T any](r *Reader, t Info, size int, out []T, convert func(dst []T, src []byte)) error {
	total := t.End - t.Begin
	buf := make([]byte, min(total, chunkSize/int64(size)*int64(size)))
	done := 0
	for off := int64(0); off < total; {
		chunk := buf[:min(int64(len(buf)), total-off)]
		if err := readFull(r.src, chunk, r.dataStart+t.Begin+off); err != nil {
			return r.readError(t, err)
		}
		n := len(chunk) / size
		convert(out[done:done+n], chunk)
		done += n
		off += int64(len(chunk))
	}
	return nil
}
