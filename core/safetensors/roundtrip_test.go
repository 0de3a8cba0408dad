package safetensors

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func randomFloats[T Float](rng *rand.Rand, n int) []T {
	v := make([]T, n)
	for i := range v {
		v[i] = T(rng.NormFloat64() * math.Exp(8*rng.Float64()-4))
	}
	return v
}

// Values written and read back are bit-identical, special values included,
// and tensors larger than the decode chunk survive intact.
func TestRoundTripFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := randomFloats[float32](rng, chunkSize/4*3+7) // spans several chunks
	special32 := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.MaxFloat32, math.SmallestNonzeroFloat32}
	special64 := []float64{0, math.Copysign(0, -1), math.Inf(1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64}
	f64 := randomFloats[float64](rng, 5*7)
	tensors := []Tensor{
		FromFloats("big", []int{len(big)}, big),
		FromFloats("special32", []int{len(special32)}, special32),
		FromFloats("special64", []int{2, 3}, special64),
		FromFloats("layer.weight", []int{5, 7}, f64),
		FromFloats("scalar", []int{}, []float64{42}),
		FromFloats("nothing", []int{4, 0}, []float32{}),
	}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	meta := map[string]string{"method": "pissa", "rank": "4"}
	if err := WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Metadata(); len(got) != 2 || got["method"] != "pissa" || got["rank"] != "4" {
		t.Fatalf("metadata %v", got)
	}
	same32 := func(name string, want []float32) {
		got, err := r.Float32s(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	same64 := func(name string, want []float64) {
		got, err := r.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	same32("big", big)
	same32("special32", special32)
	same64("special64", special64)
	same64("layer.weight", f64)
	same64("scalar", []float64{42})
	same32("nothing", nil)
	for _, info := range r.Tensors() {
		if info.DType == F64 && info.Begin%8 != 0 || (r.DataStart()+info.Begin)%int64(info.DType.Bits()/8) != 0 {
			t.Errorf("%s starts at unaligned file offset %d", info.Name, r.DataStart()+info.Begin)
		}
	}
}

// Re-encoding what was read gives back the same bytes, for every dtype.
func TestRawPassThrough(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tensors []Tensor
	for i, d := range dtypeOrder {
		shape := []int{2, 4}
		n, _ := d.byteLen(8)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		tensors = append(tensors, FromRaw(strings.Repeat("t", i+1)+"."+string(d), d, shape, b))
	}
	first := writeBytes(t, tensors, map[string]string{"x": "y"})
	r, err := NewReader(bytes.NewReader(first), int64(len(first)), "all-dtypes")
	if err != nil {
		t.Fatal(err)
	}
	var again []Tensor
	for _, info := range r.Tensors() {
		raw, err := r.Raw(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, FromRaw(info.Name, info.DType, info.Shape, raw))
	}
	slices.Reverse(again)
	if second := writeBytes(t, again, r.Metadata()); !bytes.Equal(first, second) {
		t.Fatal("re-encoding a file does not reproduce its bytes")
	}
}

func TestWriteRejectsBadTensors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		tensors []Tensor
		meta    map[string]string
		want    string
	}{
		"short values":   {[]Tensor{FromFloats("w", []int{2, 3}, []float32{1, 2})}, nil, `"w": 8 bytes of values but dtype F32 × shape [2 3] needs 24`},
		"negative dim":   {[]Tensor{FromFloats("w", []int{-1}, []float32{})}, nil, `"w": invalid shape [-1]`},
		"duplicate":      {[]Tensor{FromFloats("w", []int{1}, []float32{1}), FromFloats("w", []int{1}, []float32{2})}, nil, "two tensors have this name"},
		"reserved":       {[]Tensor{FromFloats("__metadata__", []int{1}, []float32{1})}, nil, "reserved"},
		"unknown dtype":  {[]Tensor{FromRaw("w", "Q4", []int{1}, []byte{1})}, nil, `unknown dtype "Q4"`},
		"bad utf8 name":  {[]Tensor{FromFloats("w\xff", []int{1}, []float32{1})}, nil, "not valid UTF-8"},
		"bad utf8 meta":  {nil, map[string]string{"k": "\xff"}, "not valid UTF-8"},
		"no values":      {[]Tensor{{Spec: Spec{Name: "w", DType: F32, Shape: []int{1}}}}, nil, "no values"},
		"packed partial": {[]Tensor{FromRaw("w", F4, []int{3}, []byte{1, 2})}, nil, "not a whole number of bytes"},
	}
	for name, c := range cases {
		path := filepath.Join(dir, "out.safetensors")
		err := WriteFile(path, c.tensors, c.meta)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), path) && name != "short values" && name != "no values" {
			t.Errorf("%s: error %v does not name the file", name, err)
		}
		var b bytes.Buffer
		if err := Write(&b, c.tensors, c.meta); err == nil {
			t.Errorf("%s: Write accepted it", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed writes left files behind: %v", entries)
	}
}

// A failed or abandoned write never replaces the destination and leaves no
// temporary file; a committed one replaces it whole.
func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := []byte("previous contents")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	specs := []Spec{{Name: "a", DType: F32, Shape: []int{2}}, {Name: "b", DType: F64, Shape: []int{1}}}
	// Commit with a tensor missing fails and names it.
	fw, err := Create(path, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Put(FromFloats("a", []int{2}, []float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	if err := fw.Commit(); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("Commit with a missing tensor: %v", err)
	}
	if err := fw.Put(FromFloats("a", []int{2}, []float32{1, 2})); err == nil {
		t.Fatal("putting a tensor twice must fail")
	}
	if err := fw.Put(FromFloats("b", []int{2}, []float64{1, 2})); err == nil || !strings.Contains(err.Error(), "declared F64 [1]") {
		t.Fatalf("wrong shape: %v", err)
	}
	if err := fw.Put(FromFloats("c", []int{1}, []float64{1})); err == nil {
		t.Fatal("undeclared tensor must fail")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Fatal("destination changed before Commit")
	}
	if err := fw.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Fatal("destination changed by Abort")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("Abort left files: %v", entries)
	}
	// A complete write replaces the destination.
	fw, err = Create(path, specs, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Abort()
	if err := fw.Put(FromFloats("b", []int{1}, []float64{3})); err != nil {
		t.Fatal(err)
	}
	if err := fw.Put(FromFloats("a", []int{2}, []float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := fw.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	got, _ := os.ReadFile(path)
	want := writeBytes(t, []Tensor{FromFloats("a", []int{2}, []float32{1, 2}), FromFloats("b", []int{1}, []float64{3})}, map[string]string{"k": "v"})
	if !bytes.Equal(got, want) {
		t.Fatal("committed file differs from Write's output")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("Commit left files: %v", entries)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
	// Writing into a directory that does not exist fails cleanly.
	if err := WriteFile(filepath.Join(dir, "no", "such", "x.safetensors"), nil, nil); err == nil {
		t.Fatal("writing into a missing directory must fail")
	}
}

// Tensors put concurrently, in random order, give the same bytes as Write.
func TestConcurrentPut(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tensors []Tensor
	var specs []Spec
	for i := range 40 {
		m, n := 1+rng.IntN(30), 1+rng.IntN(30)
		var tn Tensor
		if i%2 == 0 {
			tn = FromFloats("layer"+string(rune('A'+i%26))+string(rune('a'+i/26)), []int{m, n}, randomFloats[float32](rng, m*n))
		} else {
			tn = FromFloats("layer"+string(rune('A'+i%26))+string(rune('a'+i/26)), []int{m, n}, randomFloats[float64](rng, m*n))
		}
		tensors = append(tensors, tn)
		specs = append(specs, tn.Spec)
	}
	path := filepath.Join(t.TempDir(), "c.safetensors")
	fw, err := Create(path, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Abort()
	var wg sync.WaitGroup
	errs := make(chan error, len(tensors))
	for _, i := range rng.Perm(len(tensors)) {
		wg.Go(func() { errs <- fw.Put(tensors[i]) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := writeBytes(t, tensors, nil); !bytes.Equal(got, want) {
		t.Fatal("concurrent Put output differs from Write's")
	}
}

// The portable (byte-by-byte) encode and decode paths, used on big-endian
// machines, give the same bytes and values as the direct-memory ones.
func TestPortablePathsMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	v32 := randomFloats[float32](rng, chunkSize/4+3)
	v64 := randomFloats[float64](rng, 1000)
	tensors := []Tensor{FromFloats("a", []int{len(v32)}, v32), FromFloats("b", []int{10, 100}, v64)}
	fast := writeBytes(t, tensors, nil)
	littleEndianHost = false
	defer func() { littleEndianHost = true }()
	portable := writeBytes(t, tensors, nil)
	if !bytes.Equal(fast, portable) {
		t.Fatal("portable encoding differs")
	}
	r, err := NewReader(bytes.NewReader(portable), int64(len(portable)), "portable")
	if err != nil {
		t.Fatal(err)
	}
	got32, err := r.Float32s("a")
	if err != nil || !slices.Equal(got32, v32) {
		t.Fatalf("portable F32 decode differs: %v", err)
	}
	got64, err := r.Float64s("b")
	if err != nil || !slices.Equal(got64, v64) {
		t.Fatalf("portable F64 decode differs: %v", err)
	}
}
