package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest header accepted, in bytes (the reference
// implementation's limit; it keeps a hostile file from forcing a huge parse).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the string→string metadata.
const metadataKey = "__metadata__"

// ErrFormat is matched (errors.Is) by every *FormatError.
var ErrFormat = errors.New("invalid safetensors file")

// FormatError reports a file whose contents break the format.
type FormatError struct {
	File    string // path of the file (or the name given to NewReader)
	Tensor  string // tensor concerned; "" when the problem is the file's
	Problem string // what is wrong, with the values found and expected
}

func (e *FormatError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("safetensors file %s: tensor %q: %s", e.File, e.Tensor, e.Problem)
	}
	return fmt.Sprintf("safetensors file %s: %s", e.File, e.Problem)
}

// Is makes errors.Is(err, ErrFormat) true for every *FormatError.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// Spec names a tensor and gives its element type and shape.
type Spec struct {
	Name  string
	DType DType
	Shape []int // row-major; [] is a scalar (one element)
}

// NumElements is the product of the shape (1 for a scalar), or -1 when a
// dimension is negative or the product overflows int64.
func (s Spec) NumElements() int64 {
	n := int64(1)
	for _, d := range s.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/int64(d)) {
			return -1
		}
		n *= int64(d)
	}
	return n
}

// NumBytes is the storage size of the tensor's data, or -1 when the dtype
// is unknown, the shape invalid or the size not a whole number of bytes.
func (s Spec) NumBytes() int64 {
	n, ok := s.DType.byteLen(s.NumElements())
	if !ok {
		return -1
	}
	return n
}

func (s Spec) clone() Spec {
	s.Shape = slices.Clone(s.Shape)
	if s.Shape == nil {
		s.Shape = []int{}
	}
	return s
}

// Info is a tensor's entry in a file's header: its Spec and where its bytes
// lie in the data section ("data_offsets" [Begin, End), End exclusive).
type Info struct {
	Spec
	Begin, End int64
}

// parseHeader decodes and validates a header (the N bytes after the length
// prefix) for a file whose data section holds dataSize bytes. It returns
// the tensors in data order and the metadata (nil when absent).
func parseHeader(file string, header []byte, dataSize int64) ([]Info, map[string]string, error) {
	fail := func(tensor, format string, args ...any) error {
		return &FormatError{File: file, Tensor: tensor, Problem: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(header) {
		return nil, nil, fail("", "header is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(header, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, fail("", "header does not start with a JSON object '{' (got %s)", quoteStart(trimmed))
	}
	dec := newDecoder(header)
	var infos []Info
	var metadata map[string]string
	seen := map[string]bool{}
	err := decodeObject(dec, func(key string) error {
		if seen[key] {
			if key == metadataKey {
				return fail("", "duplicate key %q in header", key)
			}
			return fail(key, "appears twice in the header")
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if key == metadataKey {
			m, err := decodeMetadata(raw)
			if err != nil {
				return fail("", "%s: %v", metadataKey, err)
			}
			metadata = m
			return nil
		}
		info, err := decodeEntry(key, raw)
		if err != nil {
			return fail(key, "%v", err)
		}
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			return nil, nil, err
		}
		return nil, nil, fail("", "header is not a valid JSON object: %v", err)
	}
	if rest := bytes.TrimLeft(header[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, nil, fail("", "unexpected %s after the header's JSON object (only space padding may follow)", quoteStart(rest))
	}
	if err := checkLayout(file, infos, dataSize); err != nil {
		return nil, nil, err
	}
	return infos, metadata, nil
}

// checkLayout sorts infos into data order and checks each entry's dtype,
// shape and size, and that together they tile [0, dataSize) exactly.
func checkLayout(file string, infos []Info, dataSize int64) error {
	fail := func(tensor, format string, args ...any) error {
		return &FormatError{File: file, Tensor: tensor, Problem: fmt.Sprintf(format, args...)}
	}
	for _, t := range infos {
		if !t.DType.Known() {
			return fail(t.Name, "unknown dtype %q (expected one of %s)", t.DType, knownDTypes())
		}
		if t.Begin > t.End {
			return fail(t.Name, "data_offsets [%d, %d] end before they begin", t.Begin, t.End)
		}
		elements := t.NumElements()
		if elements < 0 {
			return fail(t.Name, "shape %v has too many elements (overflow)", t.Shape)
		}
		want, ok := t.DType.byteLen(elements)
		if !ok {
			return fail(t.Name, "shape %v of dtype %s is not a whole number of bytes", t.Shape, t.DType)
		}
		if got := t.End - t.Begin; got != want {
			return fail(t.Name, "data_offsets [%d, %d] span %d bytes but dtype %s × shape %v needs %d",
				t.Begin, t.End, got, t.DType, t.Shape, want)
		}
		if t.End > dataSize {
			return fail(t.Name, "data_offsets [%d, %d] run past the end of the data section (%d bytes): file truncated?",
				t.Begin, t.End, dataSize)
		}
	}
	slices.SortFunc(infos, func(a, b Info) int {
		if c := compareInt64(a.Begin, b.Begin); c != 0 {
			return c
		}
		if c := compareInt64(a.End, b.End); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var end int64
	prev := ""
	for _, t := range infos {
		switch {
		case t.Begin > end && prev == "":
			return fail(t.Name, "data_offsets [%d, %d]: the data section must start with a tensor at offset 0 (gap of %d bytes)",
				t.Begin, t.End, t.Begin)
		case t.Begin > end:
			return fail(t.Name, "data_offsets [%d, %d] leave a gap: the previous tensor %q ends at %d",
				t.Begin, t.End, prev, end)
		case t.Begin < end:
			return fail(t.Name, "data_offsets [%d, %d] overlap tensor %q, which ends at %d",
				t.Begin, t.End, prev, end)
		}
		end, prev = t.End, t.Name
	}
	if end != dataSize {
		return fail("", "the tensors cover %d bytes of data but the data section holds %d (%d unaccounted bytes)",
			end, dataSize, dataSize-end)
	}
	return nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func knownDTypes() string {
	names := make([]string, len(dtypeOrder))
	for i, d := range dtypeOrder {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}

// quoteStart shows the first few bytes of b in an error message.
func quoteStart(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	if len(b) > 16 {
		return strconv.Quote(string(b[:16])) + "…"
	}
	return strconv.Quote(string(b))
}

// decodeObject reads a JSON object from dec, calling value for each key
// with the decoder positioned before that key's value.
func decodeObject(dec *json.Decoder, value func(key string) error) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("expected an object key, got %v", tok)
		}
		if err := value(key); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, got %s", want, describeToken(tok))
	}
	return nil
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return strconv.Quote(v.String())
	case string:
		return "string " + strconv.Quote(v)
	case json.Number:
		return "number " + v.String()
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case nil:
		return "null"
	}
	return fmt.Sprint(tok)
}

// decodeMetadata parses the "__metadata__" value: a flat object of strings
// (null is accepted as no metadata, as the reference reader does).
func decodeMetadata(raw json.RawMessage) (map[string]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	dec := newDecoder(raw)
	m := map[string]string{}
	err := decodeObject(dec, func(key string) error {
		if _, dup := m[key]; dup {
			return fmt.Errorf("duplicate key %q", key)
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		s, ok := tok.(string)
		if !ok {
			return fmt.Errorf("value of %q must be a string (metadata maps strings to strings), got %s", key, describeToken(tok))
		}
		m[key] = s
		return nil
	})
	return m, err
}

// decodeEntry parses one tensor's header value:
// {"dtype": "F32", "shape": [m, n], "data_offsets": [begin, end]}.
// Other fields are ignored, as the reference reader ignores them.
func decodeEntry(name string, raw json.RawMessage) (Info, error) {
	info := Info{Spec: Spec{Name: name}}
	dec := newDecoder(raw)
	seen := map[string]bool{}
	err := decodeObject(dec, func(key string) error {
		if seen[key] {
			return fmt.Errorf("field %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "dtype":
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			s, ok := tok.(string)
			if !ok {
				return fmt.Errorf("dtype must be a string such as \"F32\", got %s", describeToken(tok))
			}
			info.DType = DType(s)
		case "shape":
			dims, err := decodeInts(dec, "shape")
			if err != nil {
				return err
			}
			info.Shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt {
					return fmt.Errorf("shape %v: dimension %d too large", dims, d)
				}
				info.Shape[i] = int(d)
			}
		case "data_offsets":
			offsets, err := decodeInts(dec, "data_offsets")
			if err != nil {
				return err
			}
			if len(offsets) != 2 {
				return fmt.Errorf("data_offsets must be [begin, end], got %d numbers", len(offsets))
			}
			info.Begin, info.End = offsets[0], offsets[1]
		default:
			var skip json.RawMessage
			return dec.Decode(&skip)
		}
		return nil
	})
	if err != nil {
		return info, err
	}
	for _, field := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[field] {
			return info, fmt.Errorf("missing field %q", field)
		}
	}
	return info, nil
}

// decodeInts reads a JSON array of non-negative integers.
func decodeInts(dec *json.Decoder, field string) ([]int64, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	values := []int64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s must hold integers, got %s", field, describeToken(tok))
		}
		v, err := strconv.ParseInt(num.String(), 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s must hold non-negative integers below 2⁶³, got %s", field, num)
		}
		values = append(values, v)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return values, nil
}

func newDecoder(b []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec
}
