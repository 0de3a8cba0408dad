package rdata

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// enc writes R's XDR serialization by hand, following R's serialize.c.
type enc struct{ bytes.Buffer }

func (e *enc) int(v int32) *enc { binary.Write(&e.Buffer, binary.BigEndian, v); return e }
func (e *enc) header(version int32) *enc {
	e.WriteString("X\n")
	e.int(version).int(0x040201).int(0x030500)
	if version == 3 {
		e.int(5).WriteString("UTF-8")
	}
	return e
}
func (e *enc) char(s string) *enc { e.int(0x00040009).int(int32(len(s))); e.WriteString(s); return e }
func (e *enc) na() *enc           { return e.int(9).int(-1) }
func (e *enc) strs(ss ...string) *enc {
	e.int(16).int(int32(len(ss)))
	for _, s := range ss {
		e.char(s)
	}
	return e
}

// namedList writes list(a = c("x", NA, "ü"), b = 1:3, c = c(1.5, -2), d = TRUE)
// with a names attribute, the symbol "names" written once and then
// referenced, as R does.
func namedList() []byte {
	e := &enc{}
	e.header(3)
	e.int(19 | 1<<9).int(4)
	e.int(16).int(3).char("x").na().char("ü")
	e.int(13).int(3).int(1).int(2).int(3)
	e.int(14).int(2)
	binary.Write(&e.Buffer, binary.BigEndian, math.Float64bits(1.5))
	binary.Write(&e.Buffer, binary.BigEndian, math.Float64bits(-2))
	e.int(10).int(1).int(1)
	// attributes: pairlist(names = c("a","b","c","d"))
	e.int(2|1<<10).int(1).char("names").strs("a", "b", "c", "d")
	e.int(nilValueSXP)
	return e.Bytes()
}

func TestUnserializeNamedList(t *testing.T) {
	for _, compress := range []bool{false, true} {
		data := namedList()
		if compress {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(data)
			zw.Close()
			data = z.Bytes()
		}
		v, err := Unserialize(data, "list.rds")
		if err != nil {
			t.Fatal(err)
		}
		if v.Type != List || strings.Join(v.Names(), ",") != "a,b,c,d" {
			t.Fatalf("got type %d names %v", v.Type, v.Names())
		}
		a, _ := v.Field("a")
		if a.Type != Character || len(a.Strings) != 3 || a.Strings[0] != "x" || !a.NA[1] || a.Strings[2] != "ü" {
			t.Errorf("a = %+v", a)
		}
		b, _ := v.Field("b")
		c, _ := v.Field("c")
		d, _ := v.Field("d")
		if len(b.Ints) != 3 || b.Ints[2] != 3 || len(c.Doubles) != 2 || c.Doubles[0] != 1.5 || c.Doubles[1] != -2 || d.Type != Logical || d.Ints[0] != 1 {
			t.Errorf("b %+v c %+v d %+v", b, c, d)
		}
	}
}

func TestUnserializeSymbolReference(t *testing.T) {
	// pairlist(names = "p", names = "q"): the second tag refers back to the
	// first symbol (REFSXP with index 1 packed in the flags).
	e := &enc{}
	e.header(2)
	e.int(2 | 1<<10).int(1).char("names").strs("p")
	e.int(2 | 1<<10).int(refSXP | 1<<8).strs("q")
	e.int(nilValueSXP)
	v, err := Unserialize(e.Bytes(), "refs")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(v.Tags, ",") != "names,names" || v.Elems[1].Strings[0] != "q" {
		t.Errorf("tags %v elems %+v", v.Tags, v.Elems)
	}
}

func TestUnserializeRejectsCorruptInput(t *testing.T) {
	good := namedList()
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, `expected the XDR serialization header "X\n"`},
		{"ascii format", []byte("A\n3\n"), `found "A\n"`},
		{"version 4", append([]byte("X\n"), 0, 0, 0, 4), "version 2 or 3, found 4"},
		{"truncated", good[:len(good)-7], "truncated"},
		{"huge length", append(append([]byte(nil), good[:23]...), 0, 0, 0, 0x10, 0x7f, 0xff, 0xff, 0xff), "needs at least"},
		{"closure", append(append([]byte(nil), good[:23]...), 0, 0, 0, 3), "SEXP type 3 is not supported"},
		{"bad reference", append(append([]byte(nil), good[:23]...), 0, 0, 5, 0xff), "reference 5"},
	} {
		_, err := Unserialize(c.data, "bad.rds")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.rds") {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

// A lazy-load database written the way R writes one: .rdx = gzip'd
// serialization of list(variables = list(x = c(offset, length)),
// references = list(), compressed = TRUE); .rdb = length + zlib stream.
func TestLazyLoadDB(t *testing.T) {
	obj := &enc{}
	obj.header(3).strs("It is a truth universally acknowledged", "")
	var rdb bytes.Buffer
	binary.Write(&rdb, binary.BigEndian, uint32(obj.Len()))
	zw := zlib.NewWriter(&rdb)
	zw.Write(obj.Bytes())
	zw.Close()

	idx := &enc{}
	idx.header(3)
	idx.int(19 | 1<<9).int(3)
	idx.int(19 | 1<<9).int(1).int(13).int(2).int(0).int(int32(rdb.Len()))
	idx.int(2 | 1<<10).int(1).char("names").strs("pride")
	idx.int(nilValueSXP)
	idx.int(19).int(0)
	idx.int(10).int(1).int(1)
	idx.int(2|1<<10).int(refSXP|1<<8).strs("variables", "references", "compressed")
	idx.int(nilValueSXP)
	var rdx bytes.Buffer
	gz := gzip.NewWriter(&rdx)
	gz.Write(idx.Bytes())
	gz.Close()

	dir := t.TempDir()
	rdxPath, rdbPath := filepath.Join(dir, "Rdata.rdx"), filepath.Join(dir, "Rdata.rdb")
	os.WriteFile(rdxPath, rdx.Bytes(), 0o644)
	os.WriteFile(rdbPath, rdb.Bytes(), 0o644)
	db, err := OpenLazyLoadDB(rdxPath, rdbPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(db.Names(), ",") != "pride" {
		t.Fatalf("names %v", db.Names())
	}
	v, err := db.Get("pride")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Strings) != 2 || v.Strings[0] != "It is a truth universally acknowledged" {
		t.Errorf("got %+v", v)
	}
	if _, err := db.Get("emma"); err == nil || !strings.Contains(err.Error(), `no object "emma"`) {
		t.Errorf("missing object: %v", err)
	}
	// A truncated .rdb: the object lies past the end.
	os.WriteFile(rdbPath, rdb.Bytes()[:rdb.Len()-3], 0o644)
	if _, err := db.Get("pride"); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated rdb: %v", err)
	}
}

// FuzzUnserialize: no input makes the decoder panic or hang.
func FuzzUnserialize(f *testing.F) {
	f.Add(namedList())
	f.Add([]byte("X\n\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x01\x00\x04\x00\x09\x00\x00\x00\x01a"))
	f.Add([]byte("X\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unserialize(data, "fuzz")
		if err == nil && v == nil {
			t.Fatal("nil value without error")
		}
	})
}
