// Package rdata reads the parts of R's serialization format that R packages
// use to ship data — enough to take character vectors (and the index that
// locates them) out of a package's lazy-load database without R:
//
//	<pkg>/data/Rdata.rdx   gzip-compressed serialization of
//	                       list(variables = list(NAME = c(offset, length), …),
//	                            references = list(), compressed = TRUE|2|3)
//	<pkg>/data/Rdata.rdb   the objects: at each offset, a 4-byte big-endian
//	                       uncompressed length, then a zlib (TRUE/1) or
//	                       bzip2 (2) stream of one serialization
//
// A serialization is "X\n" (big-endian XDR binary), the format version (2
// or 3), the writer's and the minimal reader's R versions, for version 3 the
// native encoding's name, then one item. An item starts with a 32-bit
// flags word: bits 0–7 the SEXP type, bit 8 "is object", bit 9 "has
// attributes", bit 10 "has tag", bits 12–27 the general-purpose levels
// (CHARSXP encodings). Supported types: NULL, symbols (and references back
// to them), pairlists (attributes), character, logical, integer and double
// vectors, and generic vectors (lists). Anything else is an error naming
// the type. Lengths are checked against the bytes that remain, so corrupt
// input gives an error, never a huge allocation or a panic.
package rdata

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Type is an R SEXP type code.
type Type uint8

// The SEXP types this package decodes.
const (
	Null      Type = 0  // NILSXP
	Symbol    Type = 1  // SYMSXP
	Pairlist  Type = 2  // LISTSXP
	Char      Type = 9  // CHARSXP (an element of a character vector)
	Logical   Type = 10 // LGLSXP
	Integer   Type = 13 // INTSXP
	Double    Type = 14 // REALSXP
	Character Type = 16 // STRSXP
	List      Type = 19 // VECSXP
)

// Special item codes of the serialization.
const (
	refSXP      = 255
	nilValueSXP = 254
)

// NAInteger is R's NA for integers and logicals.
const NAInteger = math.MinInt32

// Value is a decoded R object.
type Value struct {
	Type Type
	// Strings holds a character vector's elements (NA as "", flagged in NA).
	Strings []string
	NA      []bool
	// Ints holds integer and logical vectors (NA as NAInteger).
	Ints []int32
	// Doubles holds a double vector.
	Doubles []float64
	// Elems holds a list's elements, or a pairlist's values.
	Elems []*Value
	// Tags holds a pairlist's tags (symbol names), parallel to Elems.
	Tags []string
	// Name is a symbol's name.
	Name string
	// Attr holds the attributes by name (e.g. "names").
	Attr map[string]*Value
}

// Names returns the "names" attribute, or nil.
func (v *Value) Names() []string {
	if n := v.Attr["names"]; n != nil && n.Type == Character {
		return n.Strings
	}
	return nil
}

// Field returns the element of a named list or pairlist called name.
func (v *Value) Field(name string) (*Value, bool) {
	if v.Type == Pairlist {
		for i, t := range v.Tags {
			if t == name {
				return v.Elems[i], true
			}
		}
		return nil, false
	}
	for i, n := range v.Names() {
		if n == name && i < len(v.Elems) {
			return v.Elems[i], true
		}
	}
	return nil, false
}

// Unserialize decodes one serialization (gzip-compressed or not, as in an
// .rds file); name is used in errors.
func Unserialize(data []byte, name string) (*Value, error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("R data %s: gzip: %w", name, err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, 1<<31))
		if err != nil {
			return nil, fmt.Errorf("R data %s: gzip: %w", name, err)
		}
	}
	d := &decoder{buf: data, name: name}
	v, err := d.stream()
	if err != nil {
		return nil, err
	}
	return v, nil
}

type decoder struct {
	buf  []byte
	pos  int
	name string
	syms []string // reference table: symbols in order of appearance
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("R data %s at byte %d: %s", d.name, d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) int() (int32, error) {
	if len(d.buf)-d.pos < 4 {
		return 0, d.errorf("expected a 4-byte integer, found end of data (truncated)")
	}
	v := int32(binary.BigEndian.Uint32(d.buf[d.pos:]))
	d.pos += 4
	return v, nil
}

// length reads a vector length, checking that at least min·length bytes
// remain (min is the smallest encoding of one element).
func (d *decoder) length(min int) (int, error) {
	n, err := d.int()
	if err != nil {
		return 0, err
	}
	if n == -1 { // long vector: two more words
		hi, err := d.int()
		if err != nil {
			return 0, err
		}
		lo, err := d.int()
		if err != nil {
			return 0, err
		}
		l := int64(uint32(hi))<<32 | int64(uint32(lo))
		if l > math.MaxInt32*4 {
			return 0, d.errorf("long vector of %d elements", l)
		}
		n = int32(min64(l, math.MaxInt32))
		if int64(n) != l {
			return 0, d.errorf("long vector of %d elements is not supported", l)
		}
	}
	if n < 0 {
		return 0, d.errorf("expected a length ≥ 0, found %d", n)
	}
	if int64(n)*int64(min) > int64(len(d.buf)-d.pos) {
		return 0, d.errorf("length %d needs at least %d bytes, only %d remain (truncated or corrupt)", n, int64(n)*int64(min), len(d.buf)-d.pos)
	}
	return int(n), nil
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

func (d *decoder) stream() (*Value, error) {
	if len(d.buf) < 2 || d.buf[0] != 'X' || d.buf[1] != '\n' {
		found := d.buf[:min(2, len(d.buf))]
		return nil, d.errorf(`expected the XDR serialization header "X\n", found %q`, found)
	}
	d.pos = 2
	version, err := d.int()
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		return nil, d.errorf("expected serialization format version 2 or 3, found %d", version)
	}
	if _, err := d.int(); err != nil { // writer's R version
		return nil, err
	}
	if _, err := d.int(); err != nil { // minimal reader R version
		return nil, err
	}
	if version == 3 {
		n, err := d.length(1)
		if err != nil {
			return nil, err
		}
		d.pos += n // native encoding name
	}
	return d.item(0)
}

const maxDepth = 256

func (d *decoder) item(depth int) (*Value, error) {
	if depth > maxDepth {
		return nil, d.errorf("nesting deeper than %d", maxDepth)
	}
	flags, err := d.int()
	if err != nil {
		return nil, err
	}
	typ := uint8(flags & 0xff)
	hasAttr := flags&(1<<9) != 0
	hasTag := flags&(1<<10) != 0
	switch typ {
	case nilValueSXP:
		return &Value{Type: Null}, nil
	case refSXP:
		i := int(uint32(flags) >> 8)
		if i == 0 {
			j, err := d.int()
			if err != nil {
				return nil, err
			}
			i = int(j)
		}
		if i < 1 || i > len(d.syms) {
			return nil, d.errorf("reference %d, but only %d symbols were seen", i, len(d.syms))
		}
		return &Value{Type: Symbol, Name: d.syms[i-1]}, nil
	case uint8(Symbol):
		c, err := d.item(depth + 1)
		if err != nil {
			return nil, err
		}
		if c.Type != Char {
			return nil, d.errorf("symbol name is of type %d, expected a CHARSXP", c.Type)
		}
		d.syms = append(d.syms, c.Strings[0])
		return &Value{Type: Symbol, Name: c.Strings[0]}, nil
	case uint8(Pairlist):
		v := &Value{Type: Pairlist}
		for {
			var attr *Value
			if hasAttr {
				if attr, err = d.item(depth + 1); err != nil {
					return nil, err
				}
			}
			_ = attr // attributes of pairlist cells are not needed
			tag := ""
			if hasTag {
				t, err := d.item(depth + 1)
				if err != nil {
					return nil, err
				}
				if t.Type != Symbol {
					return nil, d.errorf("pairlist tag of type %d, expected a symbol", t.Type)
				}
				tag = t.Name
			}
			car, err := d.item(depth + 1)
			if err != nil {
				return nil, err
			}
			v.Tags, v.Elems = append(v.Tags, tag), append(v.Elems, car)
			// The CDR: another pairlist cell continues the list iteratively.
			next, err := d.int()
			if err != nil {
				return nil, err
			}
			if uint8(next&0xff) == nilValueSXP {
				return v, nil
			}
			if uint8(next&0xff) != uint8(Pairlist) {
				return nil, d.errorf("pairlist continues with type %d, expected another cell or NULL", next&0xff)
			}
			hasAttr, hasTag = next&(1<<9) != 0, next&(1<<10) != 0
		}
	case uint8(Char):
		n, err := d.int()
		if err != nil {
			return nil, err
		}
		if n == -1 {
			return &Value{Type: Char, Strings: []string{""}, NA: []bool{true}}, nil
		}
		if n < 0 || int(n) > len(d.buf)-d.pos {
			return nil, d.errorf("string of %d bytes, only %d remain (truncated or corrupt)", n, len(d.buf)-d.pos)
		}
		s := string(d.buf[d.pos : d.pos+int(n)])
		d.pos += int(n)
		return &Value{Type: Char, Strings: []string{s}, NA: []bool{false}}, nil
	}
	var v *Value
	switch Type(typ) {
	case Logical, Integer:
		n, err := d.length(4)
		if err != nil {
			return nil, err
		}
		v = &Value{Type: Type(typ), Ints: make([]int32, n)}
		for i := range v.Ints {
			v.Ints[i] = int32(binary.BigEndian.Uint32(d.buf[d.pos:]))
			d.pos += 4
		}
	case Double:
		n, err := d.length(8)
		if err != nil {
			return nil, err
		}
		v = &Value{Type: Double, Doubles: make([]float64, n)}
		for i := range v.Doubles {
			v.Doubles[i] = math.Float64frombits(binary.BigEndian.Uint64(d.buf[d.pos:]))
			d.pos += 8
		}
	case Character:
		n, err := d.length(8) // each element: flags + length
		if err != nil {
			return nil, err
		}
		v = &Value{Type: Character, Strings: make([]string, n), NA: make([]bool, n)}
		for i := range n {
			c, err := d.item(depth + 1)
			if err != nil {
				return nil, err
			}
			if c.Type != Char {
				return nil, d.errorf("element %d of a character vector has type %d, expected a CHARSXP", i, c.Type)
			}
			v.Strings[i], v.NA[i] = c.Strings[0], c.NA[0]
		}
	case List:
		n, err := d.length(4)
		if err != nil {
			return nil, err
		}
		v = &Value{Type: List, Elems: make([]*Value, n)}
		for i := range n {
			if v.Elems[i], err = d.item(depth + 1); err != nil {
				return nil, err
			}
		}
	case Null:
		v = &Value{Type: Null}
	default:
		return nil, d.errorf("SEXP type %d is not supported (only NULL, symbols, pairlists, character, logical, integer, double and list)", typ)
	}
	if hasAttr {
		attrs, err := d.item(depth + 1)
		if err != nil {
			return nil, err
		}
		if attrs.Type != Pairlist {
			return nil, d.errorf("attributes of type %d, expected a pairlist", attrs.Type)
		}
		v.Attr = make(map[string]*Value, len(attrs.Tags))
		for i, t := range attrs.Tags {
			v.Attr[t] = attrs.Elems[i]
		}
	}
	return v, nil
}

// MaxObjectBytes bounds one object's uncompressed size in a lazy-load
// database (1 GiB).
const MaxObjectBytes = 1 << 30

// LazyLoadDB is an R package's lazy-load database (NAME.rdx + NAME.rdb).
type LazyLoadDB struct {
	rdbPath     string
	compression int32
	index       map[string][2]int64 // name → offset, length in the .rdb
	names       []string
}

// OpenLazyLoadDB reads the index (.rdx) of a lazy-load database; objects
// are read from the .rdb by Get.
func OpenLazyLoadDB(rdxPath, rdbPath string) (*LazyLoadDB, error) {
	raw, err := os.ReadFile(rdxPath)
	if err != nil {
		return nil, fmt.Errorf("R lazy-load index: %w", err)
	}
	idx, err := Unserialize(raw, rdxPath)
	if err != nil {
		return nil, err
	}
	vars, ok := idx.Field("variables")
	if !ok || vars.Type != List {
		return nil, fmt.Errorf("R lazy-load index %s: expected a list with a 'variables' list", rdxPath)
	}
	db := &LazyLoadDB{rdbPath: rdbPath, compression: 1, index: map[string][2]int64{}}
	if c, ok := idx.Field("compressed"); ok && len(c.Ints) == 1 {
		db.compression = c.Ints[0]
	} else if ok && len(c.Doubles) == 1 {
		db.compression = int32(c.Doubles[0])
	}
	names := vars.Names()
	if len(names) != len(vars.Elems) {
		return nil, fmt.Errorf("R lazy-load index %s: %d variables but %d names", rdxPath, len(vars.Elems), len(names))
	}
	for i, n := range names {
		e := vars.Elems[i]
		var off, l int64
		switch {
		case e.Type == Integer && len(e.Ints) == 2:
			off, l = int64(e.Ints[0]), int64(e.Ints[1])
		case e.Type == Double && len(e.Doubles) == 2:
			off, l = int64(e.Doubles[0]), int64(e.Doubles[1])
		default:
			return nil, fmt.Errorf("R lazy-load index %s: variable %q: expected c(offset, length), found type %d", rdxPath, n, e.Type)
		}
		if off < 0 || l < 4 {
			return nil, fmt.Errorf("R lazy-load index %s: variable %q: bad offset %d / length %d", rdxPath, n, off, l)
		}
		db.index[n] = [2]int64{off, l}
		db.names = append(db.names, n)
	}
	return db, nil
}

// Names lists the objects in index order.
func (db *LazyLoadDB) Names() []string { return append([]string(nil), db.names...) }

// Get reads, decompresses and decodes one object.
func (db *LazyLoadDB) Get(name string) (*Value, error) {
	loc, ok := db.index[name]
	if !ok {
		return nil, fmt.Errorf("R lazy-load database %s: no object %q (have %v)", db.rdbPath, name, db.names)
	}
	f, err := os.Open(db.rdbPath)
	if err != nil {
		return nil, fmt.Errorf("R lazy-load database: %w", err)
	}
	defer f.Close()
	chunk := make([]byte, loc[1])
	if _, err := f.ReadAt(chunk, loc[0]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("R lazy-load database %s: object %q at bytes %d+%d lies past the end of the file (truncated)", db.rdbPath, name, loc[0], loc[1])
		}
		return nil, fmt.Errorf("R lazy-load database %s: %w", db.rdbPath, err)
	}
	size := int64(binary.BigEndian.Uint32(chunk))
	if size > MaxObjectBytes {
		return nil, fmt.Errorf("R lazy-load database %s: object %q claims %d bytes, more than %d", db.rdbPath, name, size, MaxObjectBytes)
	}
	var zr io.Reader
	switch db.compression {
	case 1:
		z, err := zlib.NewReader(bytes.NewReader(chunk[4:]))
		if err != nil {
			return nil, fmt.Errorf("R lazy-load database %s: object %q: zlib: %w", db.rdbPath, name, err)
		}
		zr = z
	case 2:
		// R stores a type byte ('2' = bzip2, '0' = stored) after the length.
		if len(chunk) < 5 {
			return nil, fmt.Errorf("R lazy-load database %s: object %q: chunk too short", db.rdbPath, name)
		}
		if chunk[4] == '0' {
			zr = bytes.NewReader(chunk[5:])
		} else {
			zr = bzip2.NewReader(bytes.NewReader(chunk[5:]))
		}
	default:
		return nil, fmt.Errorf("R lazy-load database %s: compression %d is not supported (zlib = 1 and bzip2 = 2 are)", db.rdbPath, db.compression)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(zr, data); err != nil {
		return nil, fmt.Errorf("R lazy-load database %s: object %q: expected %d uncompressed bytes: %w", db.rdbPath, name, size, err)
	}
	return Unserialize(data, fmt.Sprintf("%s[%s]", db.rdbPath, name))
}
