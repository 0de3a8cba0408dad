package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/prism-lora/prism/core/lowrank"
)

// Float is the element type of float tensors that can be written: float32
// values are written as F32, float64 values as F64 (lowrank.Float).
type Float = lowrank.Float

// Tensor is a named tensor to write: its Spec and its values. Build one with
// FromFloats, FromMatrix or FromRaw; the values are encoded while writing,
// never copied into a second buffer.
type Tensor struct {
	Spec
	data payload
}

// payload produces a tensor's bytes.
type payload interface {
	numBytes() int64
	encode(w io.Writer) error
}

// FromFloats wraps values (row-major, len = product of shape) as an F32
// tensor when T is float32-based and as F64 when it is float64-based.
func FromFloats[T Float](name string, shape []int, values []T) Tensor {
	dtype := F64
	if unsafe.Sizeof(*new(T)) == 4 {
		dtype = F32
	}
	return Tensor{Spec: Spec{Name: name, DType: dtype, Shape: shape}, data: floats[T](values)}
}

// FromRaw wraps bytes already in the file's encoding (little-endian
// elements of dtype, row-major), e.g. as returned by Reader.Raw.
func FromRaw(name string, dtype DType, shape []int, data []byte) Tensor {
	return Tensor{Spec: Spec{Name: name, DType: dtype, Shape: shape}, data: rawBytes(data)}
}

type rawBytes []byte

func (b rawBytes) numBytes() int64 { return int64(len(b)) }
func (b rawBytes) encode(w io.Writer) error {
	_, err := w.Write(b)
	return err
}

type floats[T Float] []T

func (v floats[T]) numBytes() int64 { return int64(len(v)) * int64(unsafe.Sizeof(*new(T))) }

func (v floats[T]) encode(w io.Writer) error {
	size := int(unsafe.Sizeof(*new(T)))
	if littleEndianHost {
		// The values' memory already is the file's encoding.
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*size))
		return err
	}
	buf := make([]byte, min(len(v)*size, chunkSize))
	for start := 0; start < len(v); {
		n := min(len(v)-start, len(buf)/size)
		chunk := buf[:n*size]
		if size == 4 {
			for i, x := range v[start : start+n] {
				binary.LittleEndian.PutUint32(chunk[4*i:], math.Float32bits(float32(x)))
			}
		} else {
			for i, x := range v[start : start+n] {
				binary.LittleEndian.PutUint64(chunk[8*i:], math.Float64bits(float64(x)))
			}
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		start += n
	}
	return nil
}

// layout validates the tensors and metadata and computes the file layout:
// the padded header bytes and every tensor's entry, in data order.
func layout(file string, specs []Spec, metadata map[string]string) ([]byte, []Info, error) {
	fail := func(tensor, format string, args ...any) error {
		if tensor != "" {
			return fmt.Errorf("safetensors: writing %s: tensor %q: %s", file, tensor, fmt.Sprintf(format, args...))
		}
		return fmt.Errorf("safetensors: writing %s: %s", file, fmt.Sprintf(format, args...))
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fail("", "metadata %q is not valid UTF-8", k)
		}
	}
	infos := make([]Info, len(specs))
	seen := make(map[string]bool, len(specs))
	for i, s := range specs {
		switch {
		case s.Name == metadataKey:
			return nil, nil, fail(s.Name, "the name is reserved for the metadata")
		case !utf8.ValidString(s.Name):
			return nil, nil, fail(s.Name, "the name is not valid UTF-8")
		case seen[s.Name]:
			return nil, nil, fail(s.Name, "two tensors have this name")
		case !s.DType.Known():
			return nil, nil, fail(s.Name, "unknown dtype %q (expected one of %s)", s.DType, knownDTypes())
		case s.NumElements() < 0:
			return nil, nil, fail(s.Name, "invalid shape %v (dimensions must be non-negative)", s.Shape)
		case s.NumBytes() < 0:
			return nil, nil, fail(s.Name, "shape %v of dtype %s is not a whole number of bytes", s.Shape, s.DType)
		}
		seen[s.Name] = true
		infos[i] = Info{Spec: s.clone()}
	}
	// Data order as in the reference writer: descending dtype alignment, then name.
	slices.SortFunc(infos, func(a, b Info) int {
		if ra, rb := dtypeRank[a.DType], dtypeRank[b.DType]; ra != rb {
			return rb - ra
		}
		return strings.Compare(a.Name, b.Name)
	})
	var offset int64
	for i := range infos {
		infos[i].Begin = offset
		offset += infos[i].NumBytes()
		infos[i].End = offset
	}
	return encodeHeader(infos, metadata), infos, nil
}

// encodeHeader writes the compact JSON header (as serde_json would) and pads
// it with spaces to a multiple of 8 bytes.
func encodeHeader(infos []Info, metadata map[string]string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range metadata {
				if !yield(k) {
					return
				}
			}
		})
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	for i, t := range infos {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":`)
		writeJSONString(&b, string(t.DType))
		b.WriteString(`,"shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatInt(t.Begin, 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(t.End, 10))
		b.WriteString("]}")
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

// writeJSONString escapes s as serde_json does: quote, backslash and control
// characters only (short forms where JSON has them, else \u00xx).
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

func specsOf(tensors []Tensor) []Spec {
	specs := make([]Spec, len(tensors))
	for i, t := range tensors {
		specs[i] = t.Spec
	}
	return specs
}

// checkPayload checks that a tensor's values fill its shape exactly.
func checkPayload(t Tensor, want int64) error {
	if t.data == nil {
		return fmt.Errorf("tensor %q has no values (build it with FromFloats, FromMatrix or FromRaw)", t.Name)
	}
	if got := t.data.numBytes(); got != want {
		return fmt.Errorf("tensor %q: %d bytes of values but dtype %s × shape %v needs %d",
			t.Name, got, t.DType, t.Shape, want)
	}
	return nil
}

// Write writes a complete safetensors file to w: the header, then every
// tensor's bytes in data order. The output is deterministic.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header, infos, err := layout("stream", specsOf(tensors), metadata)
	if err != nil {
		return err
	}
	byName := make(map[string]Tensor, len(tensors))
	for _, t := range tensors {
		byName[t.Name] = t
	}
	for _, info := range infos {
		if err := checkPayload(byName[info.Name], info.NumBytes()); err != nil {
			return fmt.Errorf("safetensors: %w", err)
		}
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, info := range infos {
		if err := byName[info.Name].data.encode(w); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes tensors and metadata to path atomically (see Create).
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	fw, err := Create(path, specsOf(tensors), metadata)
	if err != nil {
		return err
	}
	defer fw.Abort()
	for _, t := range tensors {
		if err := fw.Put(t); err != nil {
			return err
		}
	}
	return fw.Commit()
}

// FileWriter writes a safetensors file whose layout is fixed up front, so
// tensors can be produced one at a time, in any order and from several
// goroutines, without holding them all in memory. It writes into a
// temporary file in the destination's directory; Commit fsyncs it and
// renames it over the destination, Abort removes it. Until Commit succeeds
// the destination is untouched.
type FileWriter struct {
	path      string
	tmp       *os.File
	dataStart int64
	infos     []Info
	index     map[string]int

	mu      sync.Mutex
	written []bool
	done    bool
}

// Create lays out a file holding the tensors described by specs and the
// metadata, writes its header to a temporary file next to path, and returns
// a FileWriter expecting one Put per spec.
func Create(path string, specs []Spec, metadata map[string]string) (*FileWriter, error) {
	header, infos, err := layout(path, specs, metadata)
	if err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	fw := &FileWriter{path: path, tmp: tmp, dataStart: 8 + int64(len(header)), infos: infos,
		index: make(map[string]int, len(infos)), written: make([]bool, len(infos))}
	for i, t := range infos {
		fw.index[t.Name] = i
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	_, err = tmp.Write(prefix[:])
	if err == nil {
		_, err = tmp.Write(header)
	}
	if err != nil {
		fw.Abort()
		return nil, fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	return fw, nil
}

// Tensors lists the file's entries in data order, offsets included.
func (fw *FileWriter) Tensors() []Info {
	out := make([]Info, len(fw.infos))
	for i, t := range fw.infos {
		out[i] = Info{Spec: t.clone(), Begin: t.Begin, End: t.End}
	}
	return out
}

// Put writes one tensor's values at its place in the file. Its dtype and
// shape must be those declared to Create; each tensor is put once. Put may
// be called from several goroutines at once.
func (fw *FileWriter) Put(t Tensor) error {
	i, ok := fw.index[t.Name]
	if !ok {
		return fmt.Errorf("safetensors: writing %s: tensor %q was not declared to Create", fw.path, t.Name)
	}
	info := fw.infos[i]
	if t.DType != info.DType || !slices.Equal(t.Shape, info.Shape) {
		return fmt.Errorf("safetensors: writing %s: tensor %q is %s %v but was declared %s %v",
			fw.path, t.Name, t.DType, t.Shape, info.DType, info.Shape)
	}
	if err := checkPayload(t, info.NumBytes()); err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", fw.path, err)
	}
	fw.mu.Lock()
	if fw.done {
		fw.mu.Unlock()
		return fmt.Errorf("safetensors: writing %s: Put after Commit or Abort", fw.path)
	}
	if fw.written[i] {
		fw.mu.Unlock()
		return fmt.Errorf("safetensors: writing %s: tensor %q put twice", fw.path, t.Name)
	}
	fw.written[i] = true
	fw.mu.Unlock()
	w := io.NewOffsetWriter(fw.tmp, fw.dataStart+info.Begin)
	if err := t.data.encode(w); err != nil {
		return fmt.Errorf("safetensors: writing %s: tensor %q: %w", fw.path, t.Name, err)
	}
	return nil
}

// Commit checks that every declared tensor was put (call it after every Put
// has returned), flushes the temporary
// file to disk and renames it to the destination path.
func (fw *FileWriter) Commit() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.done {
		return fmt.Errorf("safetensors: writing %s: Commit after Commit or Abort", fw.path)
	}
	var missing []string
	for i, ok := range fw.written {
		if !ok {
			missing = append(missing, strconv.Quote(fw.infos[i].Name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("safetensors: writing %s: %d tensors declared but never put: %s",
			fw.path, len(missing), strings.Join(missing, ", "))
	}
	fw.done = true
	tmpName := fw.tmp.Name()
	err := fw.finish()
	if err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("safetensors: writing %s: %w", fw.path, err)
	}
	return nil
}

func (fw *FileWriter) finish() error {
	if err := fw.tmp.Chmod(0o644); err != nil {
		fw.tmp.Close()
		return err
	}
	if err := fw.tmp.Sync(); err != nil {
		fw.tmp.Close()
		return err
	}
	if err := fw.tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(fw.tmp.Name(), fw.path); err != nil {
		return err
	}
	// Make the rename itself durable.
	if d, err := os.Open(filepath.Dir(fw.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort discards the temporary file; the destination is left as it was.
// It is a no-op after Commit, so `defer fw.Abort()` is always safe.
func (fw *FileWriter) Abort() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.done {
		return nil
	}
	fw.done = true
	fw.tmp.Close()
	return os.Remove(fw.tmp.Name())
}
