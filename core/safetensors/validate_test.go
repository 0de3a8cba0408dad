package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every corrupt file gives a *FormatError naming the file, the tensor
// concerned (if any) and what is wrong.
func TestCorruptFiles(t *testing.T) {
	entry := func(name, dtype, shape, offsets string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	eight := make([]byte, 8)
	cases := []struct {
		name    string
		content []byte
		tensor  string // tensor the error must name ("" for none)
		problem string // substring of the problem
	}{
		{"empty file", nil, "", "truncated: 0 bytes"},
		{"short prefix", []byte{1, 2, 3}, "", "truncated: 3 bytes"},
		{"header longer than file", append([]byte{100, 0, 0, 0, 0, 0, 0, 0}, "{}"...), "", "header length says 100 bytes but only 2 follow"},
		{"huge header length", []byte{0, 0, 0, 0, 0, 0, 0, 1}, "", "exceeds the limit"},
		{"not JSON", file("hello!!!"), "", "does not start with a JSON object"},
		{"JSON array", file("[1,2,3] "), "", "does not start with a JSON object"},
		{"invalid UTF-8", file("{\"\xff\":1}"), "", "not valid UTF-8"},
		{"unterminated", file(`{"a":{"dtype":"F32"`), "", "not a valid JSON object"},
		{"trailing garbage", file(`{}x`), "", `unexpected "x" after the header`},
		{"two objects", file(`{}{}`), "", "after the header"},
		{"entry not an object", file(`{"w":3}`), "w", `expected "{"`},
		{"unknown dtype", file(`{`+entry("w", "F99", "[1]", "[0,4]")+`}`, eight[:4]), "w", `unknown dtype "F99"`},
		{"dtype not a string", file(`{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}`, eight[:4]), "w", "dtype must be a string"},
		{"negative dimension", file(`{`+entry("w", "F32", "[-1]", "[0,4]")+`}`, eight[:4]), "w", "non-negative integers"},
		{"fractional dimension", file(`{`+entry("w", "F32", "[1.5]", "[0,4]")+`}`, eight[:4]), "w", "non-negative integers"},
		{"shape not an array", file(`{`+entry("w", "F32", `"2"`, "[0,4]")+`}`, eight[:4]), "w", "shape"},
		{"missing shape", file(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, eight[:4]), "w", `missing field "shape"`},
		{"missing offsets", file(`{"w":{"dtype":"F32","shape":[1]}}`, eight[:4]), "w", `missing field "data_offsets"`},
		{"three offsets", file(`{`+entry("w", "F32", "[1]", "[0,4,8]")+`}`, eight[:4]), "w", "got 3 numbers"},
		{"duplicate field", file(`{"w":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}}`, eight[:4]), "w", `field "dtype" appears twice`},
		{"duplicate tensor", file(`{`+entry("w", "F32", "[1]", "[0,4]")+`,`+entry("w", "F32", "[1]", "[4,8]")+`}`, eight), "w", "appears twice"},
		{"size mismatch", file(`{`+entry("w", "F32", "[3]", "[0,8]")+`}`, eight), "w", "span 8 bytes but dtype F32 × shape [3] needs 12"},
		{"offsets reversed", file(`{`+entry("w", "F32", "[1]", "[8,4]")+`}`, eight), "w", "end before they begin"},
		{"overflowing shape", file(`{`+entry("w", "F64", "[4294967296,4294967296]", "[0,8]")+`}`, eight), "w", "overflow"},
		{"gap at start", file(`{`+entry("w", "F32", "[1]", "[4,8]")+`}`, eight), "w", "must start with a tensor at offset 0"},
		{"gap between", file(`{`+entry("a", "F32", "[1]", "[0,4]")+`,`+entry("b", "F32", "[1]", "[8,12]")+`}`, eight, eight[:4]), "b", `gap: the previous tensor "a" ends at 4`},
		{"overlap", file(`{`+entry("a", "F32", "[2]", "[0,8]")+`,`+entry("b", "F32", "[1]", "[4,8]")+`}`, eight), "b", `data_offsets [4, 8] overlap tensor "a", which ends at 8`},
		{"trailing data", file(`{`+entry("w", "F32", "[1]", "[0,4]")+`}`, eight), "", "4 unaccounted bytes"},
		{"truncated data", file(`{`+entry("w", "F32", "[4]", "[0,16]")+`}`, eight), "w", "run past the end of the data section (8 bytes): file truncated?"},
		{"metadata not strings", file(`{"__metadata__":{"epoch":3}}`), "", `value of "epoch" must be a string`},
		{"metadata nested", file(`{"__metadata__":{"a":{"b":"c"}}}`), "", `value of "a" must be a string`},
		{"metadata twice", file(`{"__metadata__":{},"__metadata__":{}}`), "", `duplicate key "__metadata__"`},
		{"packed bits", file(`{`+entry("w", "F4", "[3]", "[0,2]")+`}`, eight[:2]), "w", "not a whole number of bytes"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			if err := os.WriteFile(path, c.content, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err == nil {
				r.Close()
				t.Fatalf("Open accepted a corrupt file")
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			if fe.Tensor != c.tensor {
				t.Errorf("error names tensor %q, want %q (%s)", fe.Tensor, c.tensor, msg)
			}
			if c.tensor != "" && !strings.Contains(msg, `"`+c.tensor+`"`) {
				t.Errorf("error %q does not name tensor %q", msg, c.tensor)
			}
			if !strings.Contains(msg, c.problem) {
				t.Errorf("error %q does not say %q", msg, c.problem)
			}
		})
	}
}

// Files the format allows: no tensors, null metadata, an F4 tensor with an
// even element count, zero-length tensors sharing an offset.
func TestValidEdgeCases(t *testing.T) {
	for name, content := range map[string][]byte{
		"no tensors":    file(`{}`),
		"null metadata": file(`{"__metadata__":null}`),
		"empty meta":    file(`{"__metadata__":{}}`),
		"packed F4":     file(`{"w":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}}`, []byte{1, 2, 3}),
		"zero-length":   file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F64","shape":[3,0],"data_offsets":[0,0]}}`),
		"leading space": file(` {}`),
	} {
		if _, err := NewReader(bytes.NewReader(content), int64(len(content)), name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Cutting a valid file anywhere short of its end is always detected.
func TestEveryTruncationIsAnError(t *testing.T) {
	full := writeBytes(t, []Tensor{
		FromFloats("a", []int{3, 2}, []float64{1, 2, 3, 4, 5, 6}),
		FromFloats("b", []int{4}, []float32{1, 2, 3, 4}),
	}, map[string]string{"k": "v"})
	for n := range len(full) {
		_, err := NewReader(bytes.NewReader(full[:n]), int64(n), "cut")
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("file cut to %d of %d bytes: error %v, want a format error", n, len(full), err)
		}
	}
	// Appending a byte is detected too.
	long := append(bytes.Clone(full), 0)
	if _, err := NewReader(bytes.NewReader(long), int64(len(long)), "long"); !errors.Is(err, ErrFormat) {
		t.Fatalf("one extra byte: %v", err)
	}
}

// A file that shrinks after Open is reported when the tensor is read.
func TestShrunkAfterOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteFile(path, []Tensor{FromFloats("w", []int{64}, make([]float32, 64))}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(path, r.DataStart()+10); err != nil {
		t.Fatal(err)
	}
	_, err = r.Float32s("w")
	if err == nil || !strings.Contains(err.Error(), `tensor "w"`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("reading a truncated tensor: %v", err)
	}
}

func TestHeaderLengthPrefixIsLittleEndian(t *testing.T) {
	b := writeBytes(t, nil, map[string]string{"a": "b"})
	if n := binary.LittleEndian.Uint64(b); n != uint64(len(b)-8) || n%8 != 0 {
		t.Fatalf("prefix %d for %d header bytes", n, len(b)-8)
	}
}
