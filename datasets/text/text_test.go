package text_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/datasets/text"
)

// dirOf is the folder holding a present dataset's files.
func dirOf(t *testing.T, name string) string {
	t.Helper()
	s, err := catalog.NewStore("")
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Present {
		catalogtest.Missing(t, st.NotPresentError().Error())
	}
	return st.Dir
}

// splitRef is what Python computed from the same files with the rules of
// the package doc, independently of this code: the split stream's length
// and SHA-256, and the number of 256-byte windows.
type splitRef struct {
	bytes, windows int
	sha256         string
}

// checkLM checks a language-modelling dataset against its units and the
// Python references: streams hash as expected, and every example's tokens
// and next-byte labels are the stream's bytes.
func checkLM(t *testing.T, d datasets.InMemory, units []string, refs map[string]splitRef) {
	t.Helper()
	spec := d.Spec()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	streams := text.SplitStreams(units)
	for split, ref := range refs {
		s := streams[split]
		sum := sha256.Sum256(s)
		if len(s) != ref.bytes || hex.EncodeToString(sum[:]) != ref.sha256 {
			t.Errorf("%s: stream of %d bytes, SHA-256 %x; want %d bytes, %s", split, len(s), sum, ref.bytes, ref.sha256)
		}
		a, err := d.Arrays(split)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := spec.SplitSize(split); a.Size != ref.windows || n != ref.windows {
			t.Errorf("%s: %d examples (spec %d), want %d", split, a.Size, n, ref.windows)
		}
		for i, tok := range a.Tokens {
			if tok != int32(s[i]) || a.Labels[i] != int32(s[i+1]) {
				t.Fatalf("%s position %d: token %d label %d, stream has %d then %d", split, i, tok, a.Labels[i], s[i], s[i+1])
			}
		}
	}
}

func TestKJV(t *testing.T) {
	d := catalogtest.Open(t, "kjv")
	units, err := text.KJVUnits(filepath.Join(dirOf(t, "kjv"), "kjv.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(units[0], "Genesis 1\nIn the beginning God created the heaven and the earth.\n") ||
		!strings.HasPrefix(units[1188], "Revelation 22\nAnd he shewed me a pure river") {
		t.Errorf("units start %q … %q", units[0][:40], units[1188][:40])
	}
	checkLM(t, d, units, map[string]splitRef{
		"train":      {3743414, 14622, "6de63afea5b7dbcb2dc298a1dccba23c0e7df1a31412979fe7ce5fdff9ea7a39"},
		"validation": {204739, 799, "6ee10a96c17c06e32038b3f5af58f710269aea3c80c7af2ba6aed2a95b488bea"},
		"test":       {202677, 791, "c4e3d6e32f1f7f83b75e2439038fbd0cf80074959315279b681605d61577b2ab"},
	})
}

func TestAusten(t *testing.T) {
	d := catalogtest.Open(t, "austen")
	dir := dirOf(t, "austen")
	units, err := text.AustenUnits(filepath.Join(dir, "Rdata.rdx"), filepath.Join(dir, "Rdata.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != text.AustenChapters+6 || !strings.HasPrefix(units[0], "EMMA\n\nBy Jane Austen\n") {
		t.Errorf("%d units, first %q", len(units), units[0][:30])
	}
	checkLM(t, d, units, map[string]splitRef{
		"train":      {3598645, 14057, "e874016a59a67b2930f4d059077e884d9cacb88244519138b277f8e466c37b1e"},
		"validation": {234039, 914, "b6dd62f1506bea8dca8fdbc76a355a6a46ec2f52570f804d628f81e62185c742"},
		"test":       {192345, 751, "1f2af58befe4f4a3bc90927c42920e3bfec68a03d29818b9f386cb2ac8a2ec96"},
	})
}

func TestFortunes(t *testing.T) {
	d := catalogtest.Open(t, "fortunes")
	spec := d.Spec()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if spec.NumClasses() != 39 || spec.PadToken != 0 {
		t.Fatalf("spec %+v", spec)
	}
	wantTrain := []int{372, 841, 907, 68, 963, 228, 167, 163, 129, 159, 345, 44, 158, 120, 432, 165, 269, 83, 210, 120,
		60, 466, 521, 43, 58, 1001, 219, 42, 400, 563, 103, 500, 576, 118, 182, 66, 340, 504, 439}
	wantTest := []int{93, 210, 226, 17, 240, 56, 41, 40, 32, 39, 86, 10, 39, 30, 108, 41, 67, 20, 52, 30,
		14, 116, 130, 10, 14, 250, 54, 10, 100, 140, 25, 125, 144, 29, 45, 16, 85, 126, 109}
	for split, want := range map[string][]int{"train": wantTrain, "test": wantTest} {
		a, _ := d.Arrays(split)
		got := make([]int, 39)
		for _, y := range a.Labels {
			got[y]++
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s class counts %v, want %v", split, got, want)
		}
	}
	// The first zippy fortune is training example … find it by class order.
	a, _ := d.Arrays("train")
	zippy := slices.Index(spec.Classes, "zippy")
	first := slices.Index(a.Labels, int32(zippy))
	got := make([]byte, 60)
	for i := range got {
		got[i] = byte(a.Tokens[first*256+i])
	}
	if string(got) != "A can of ASPARAGUS, 73 pigeons, some LIVE ammo, and a FROZEN" {
		t.Errorf("first zippy fortune starts %q", got)
	}
}

func TestLanguageModelSplitsAndWindows(t *testing.T) {
	units := make([]string, 40)
	for u := range units {
		units[u] = strings.Repeat(string(rune('a'+u%26)), 10) // 10 bytes + "\n"
	}
	d, err := text.LanguageModel(text.Options{Name: "toy", SeqLen: 4}, units)
	if err != nil {
		t.Fatal(err)
	}
	// Units 18 and 38 → validation, 19 and 39 → test: 22 bytes each, (22−1)/4 = 5 windows.
	for split, want := range map[string]int{"train": (36*11 - 1) / 4, "validation": 5, "test": 5} {
		if n, _ := d.Spec().SplitSize(split); n != want {
			t.Errorf("%s: %d windows, want %d", split, n, want)
		}
	}
	v, _ := d.Arrays("test")
	if string(rune(v.Tokens[0])) != "t" || v.Labels[3] != 't' || v.Tokens[10] != '\n' || v.Tokens[11] != 'n' {
		t.Errorf("test tokens %v labels %v", v.Tokens[:12], v.Labels[:4])
	}
	if _, err := text.LanguageModel(text.Options{Name: "toy"}, units); err == nil {
		t.Error("SeqLen 0 accepted")
	}
}

func TestClassificationPadsAndTruncates(t *testing.T) {
	texts := [][]string{{"ab", "abcdefgh", "x", "y", "zz"}, {"q", "r", "s", "t", "uuuu", "v"}}
	d, err := text.Classification(text.Options{Name: "toy", SeqLen: 3}, []string{"A", "B"}, texts)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := d.Arrays("train")
	te, _ := d.Arrays("test")
	if tr.Size != 9 || te.Size != 2 {
		t.Fatalf("sizes %d, %d", tr.Size, te.Size)
	}
	if !slices.Equal(tr.Tokens[:6], []int32{'a', 'b', 0, 'a', 'b', 'c'}) || !slices.Equal(te.Tokens, []int32{'z', 'z', 0, 'u', 'u', 'u'}) ||
		!slices.Equal(te.Labels, []int32{0, 1}) {
		t.Errorf("train %v test %v labels %v", tr.Tokens[:6], te.Tokens, te.Labels)
	}
	if _, err := text.Classification(text.Options{Name: "toy", SeqLen: 3}, []string{"A"}, [][]string{{"a\x00b"}}); err == nil ||
		!strings.Contains(err.Error(), "pad byte") {
		t.Errorf("NUL in text: %v", err)
	}
}

func TestParsersRejectMalformedInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	for name, c := range map[string]struct{ content, want string }{
		"skip.txt":   {"\nGenesis 1\n\n  1 In the beginning\n  3 skipped\n", "expected verse 2, found 3"},
		"nohead.txt": {"  1 In the beginning\n", "expected a chapter heading"},
		"short.txt":  {"\nGenesis 1\n\n  1 In the beginning\n", "expected 1189 chapters and 31102 verses, found 1 and 1"},
	} {
		if _, err := text.KJVUnits(write(name, c.content)); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	got, err := text.Fortunes(write("f", "one\n%\n\n%\ntwo\nlines\n%\nthree"))
	if err != nil || !slices.Equal(got, []string{"one\n", "two\nlines\n", "three"}) {
		t.Errorf("fortunes parse %q, %v", got, err)
	}
}
