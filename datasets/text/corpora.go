package text

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prism-lora/prism/datasets/rdata"
)

// KJV corpus facts, checked when parsing.
const (
	KJVChapters = 1189
	KJVVerses   = 31102
)

// KJVUnits parses the output of Debian's `bible -l0 Gen1:1-Rev22:21`
// (a "Book N" heading line per chapter, then one "  V text" line per verse)
// into one unit per chapter: the heading line, then each verse's text on
// its own line without its number. It checks that verses are numbered
// 1, 2, … within each chapter and that there are 1,189 chapters and 31,102
// verses.
func KJVUnits(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("KJV text: %w", err)
	}
	defer f.Close()
	var units []string
	var cur strings.Builder
	verses, next, lineNo := 0, 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' { // a chapter heading
			if cur.Len() > 0 {
				units = append(units, cur.String())
				cur.Reset()
			}
			cur.WriteString(line)
			cur.WriteByte('\n')
			next = 1
			continue
		}
		num, verse, ok := strings.Cut(strings.TrimLeft(line, " "), " ")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || next == 0 {
			return nil, fmt.Errorf("KJV text %s line %d: expected a chapter heading or \"  N verse text\", found %q", path, lineNo, line)
		}
		if v != next {
			return nil, fmt.Errorf("KJV text %s line %d: expected verse %d, found %d", path, lineNo, next, v)
		}
		next++
		verses++
		cur.WriteString(verse)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("KJV text %s: %w", path, err)
	}
	if cur.Len() > 0 {
		units = append(units, cur.String())
	}
	if len(units) != KJVChapters || verses != KJVVerses {
		return nil, fmt.Errorf("KJV text %s: expected %d chapters and %d verses, found %d and %d (truncated?)",
			path, KJVChapters, KJVVerses, len(units), verses)
	}
	return units, nil
}

// AustenBooks are the six novels in janeaustenr's data, in the order of its
// lazy-load index.
var AustenBooks = []string{"emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility"}

// AustenChapters is the number of chapters of the six novels (55, 48, 31,
// 24, 61 and 50).
const AustenChapters = 269

// AustenUnits reads the novels from janeaustenr's data (Rdata.rdx and
// Rdata.rdb, one character vector of lines per novel) and cuts each into
// units: its front matter, then one unit per chapter (a line starting with
// "CHAPTER" or "Chapter" begins a chapter). Lines keep their text; each
// ends in "\n".
func AustenUnits(rdxPath, rdbPath string) ([]string, error) {
	db, err := rdata.OpenLazyLoadDB(rdxPath, rdbPath)
	if err != nil {
		return nil, err
	}
	var units []string
	chapters := 0
	for _, book := range AustenBooks {
		v, err := db.Get(book)
		if err != nil {
			return nil, err
		}
		if v.Type != rdata.Character || len(v.Strings) == 0 {
			return nil, fmt.Errorf("janeaustenr data %s: %s is of type %d with %d strings, expected a character vector of lines", rdbPath, book, v.Type, len(v.Strings))
		}
		var cur strings.Builder
		for _, line := range v.Strings {
			if strings.HasPrefix(line, "CHAPTER") || strings.HasPrefix(line, "Chapter") {
				units = append(units, cur.String())
				cur.Reset()
				chapters++
			}
			cur.WriteString(line)
			cur.WriteByte('\n')
		}
		units = append(units, cur.String())
	}
	if chapters != AustenChapters {
		return nil, fmt.Errorf("janeaustenr data %s: expected %d chapters in the six novels, found %d", rdbPath, AustenChapters, chapters)
	}
	return units, nil
}

// FortuneCategories are the categories of Debian's fortunes and
// fortunes-min packages with at least 50 fortunes each (39 of 43 files;
// ascii-art, magic, pratchett and translate-me have fewer).
var FortuneCategories = []string{
	"art", "computers", "cookie", "debian", "definitions", "disclaimer", "drugs", "education",
	"ethnic", "food", "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux",
	"linuxcookie", "literature", "love", "medicine", "men-women", "miscellaneous", "news",
	"paradoxum", "people", "perl", "pets", "platitudes", "politics", "riddles", "science",
	"songs-poems", "sports", "startrek", "tao", "wisdom", "work", "zippy",
}

// Fortunes reads one fortune file: texts separated by lines holding only
// "%"; each text keeps its lines (ending in "\n"); empty texts are dropped.
func Fortunes(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fortunes: %w", err)
	}
	var out []string
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(cur.Bytes())) > 0 {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if string(bytes.TrimRight(line, "\r\n")) == "%" {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return out, nil
}

// FortuneTexts reads every category file of dir, in FortuneCategories
// order.
func FortuneTexts(dir string) ([][]string, error) {
	texts := make([][]string, len(FortuneCategories))
	for c, name := range FortuneCategories {
		t, err := Fortunes(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if len(t) < 50 {
			return nil, fmt.Errorf("fortunes file %s: expected at least 50 fortunes, found %d", filepath.Join(dir, name), len(t))
		}
		texts[c] = t
	}
	return texts, nil
}
