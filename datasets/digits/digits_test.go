package digits_test

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog/catalogtest"
	"github.com/prism-lora/prism/datasets/digits"
)

// Reference values computed independently with numpy (np.loadtxt of the
// same file, the split rule applied in Python).
func TestRealDigits(t *testing.T) {
	d := catalogtest.Open(t, "digits")
	spec := d.Spec()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	train, _ := d.Arrays("train")
	test, _ := d.Arrays("test")
	if train.Size != 1442 || test.Size != 355 || train.Size+test.Size != digits.Total {
		t.Fatalf("split sizes %d + %d", train.Size, test.Size)
	}
	count := func(labels []int32) (c [10]int) {
		for _, y := range labels {
			c[y]++
		}
		return c
	}
	if got, want := count(test.Labels), [10]int{35, 36, 35, 36, 36, 36, 36, 35, 34, 36}; got != want {
		t.Errorf("test class counts %v, want %v", got, want)
	}
	if got, want := count(train.Labels), [10]int{143, 146, 142, 147, 145, 146, 145, 144, 140, 144}; got != want {
		t.Errorf("train class counts %v, want %v", got, want)
	}
	if got := test.Labels[:5]; got[0] != 5 || got[1] != 0 || got[2] != 9 || got[3] != 8 || got[4] != 7 {
		t.Errorf("first test labels %v, want [5 0 9 8 7]", got)
	}
	sum := func(x []float32) float32 {
		s := float32(0)
		for _, v := range x {
			if v < 0 || v > 1 {
				t.Fatalf("pixel %v outside [0, 1]", v)
			}
			s += v * 16
		}
		return s
	}
	if s := sum(train.Inputs[:64]); s != 294 {
		t.Errorf("first training image sums to %v grey levels, want 294", s)
	}
	if s := sum(test.Inputs[:64]); s != 360 {
		t.Errorf("first test image sums to %v, want 360", s)
	}
	if s := sum(train.Inputs[len(train.Inputs)-64:]); s != 392 {
		t.Errorf("last training image sums to %v, want 392", s)
	}
}

func TestLoadRejectsMalformedCSV(t *testing.T) {
	dir := t.TempDir()
	row := strings.Repeat("0,", 64) + "3"
	rows := func(n int) string { return strings.Repeat(row+"\n", n) }
	write := func(name, content string, compress bool) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if compress {
			zw := gzip.NewWriter(f)
			zw.Write([]byte(content))
			zw.Close()
		} else {
			f.WriteString(content)
		}
		f.Close()
		return p
	}
	// A well-formed file of the right length loads (all images are 3s, so
	// the split is the k mod 5 rule over one class).
	if d, err := digits.Load(digitsSpecAllThrees(), write("ok.csv.gz", rows(digits.Total), true)); err != nil {
		t.Fatalf("valid file: %v", err)
	} else if te, _ := d.Arrays("test"); te.Size != digits.Total/5 {
		t.Errorf("test size %d", te.Size)
	}
	for _, c := range []struct{ name, content, want string }{
		{"short.csv", rows(10), "expected 1797 rows, found 10"},
		{"long.csv", rows(digits.Total + 1), "found more"},
		{"fields.csv", "1,2,3\n", "line 1: expected 65 comma-separated values, found 3"},
		{"pixel.csv", strings.Repeat("0,", 10) + "17," + strings.Repeat("0,", 53) + "1\n", "line 1 pixel 10: expected 0…16, found 17"},
		{"label.csv", strings.Repeat("0,", 64) + "12\n", "expected a digit label 0…9, found 12"},
		{"text.csv", strings.Repeat("0,", 64) + "x\n", `line 1 field 65: expected an integer, found "x"`},
	} {
		_, err := digits.Load(digits.Spec(), write(c.name, c.content, false))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: got %v, want an error naming the file and %q", c.name, err, c.want)
		}
	}
}

// digitsSpecAllThrees fits a synthetic file whose 1,797 images are all 3s.
func digitsSpecAllThrees() datasets.Spec {
	s := digits.Spec()
	s.Splits[0].Size = digits.Total - digits.Total/5
	s.Splits[1].Size = digits.Total / 5
	return s
}
