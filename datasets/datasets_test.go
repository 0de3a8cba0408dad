package datasets_test

import (
	"strings"
	"testing"

	"github.com/prism-lora/prism/datasets"
)

func image() datasets.Spec {
	return datasets.Spec{
		Name: "img", Task: datasets.Classification, DType: datasets.Float32,
		Splits:       []datasets.Split{{Name: "train", Size: 10}, {Name: "test", Size: 2}},
		ExampleShape: []int{4, 4, 1}, Classes: []string{"a", "b"}, PadToken: -1,
	}
}

func TestSpecHelpers(t *testing.T) {
	s := image()
	if s.ExampleSize() != 16 || s.LabelSize() != 1 || s.NumClasses() != 2 || strings.Join(s.SplitNames(), ",") != "train,test" {
		t.Errorf("helpers: %d %d %d %v", s.ExampleSize(), s.LabelSize(), s.NumClasses(), s.SplitNames())
	}
	if n, ok := s.SplitSize("test"); n != 2 || !ok {
		t.Errorf("SplitSize(test) = %d, %v", n, ok)
	}
	if _, ok := s.SplitSize("valid"); ok {
		t.Error("SplitSize found a split that does not exist")
	}
}

func TestSpecValidate(t *testing.T) {
	if err := image().Validate(); err != nil {
		t.Fatal(err)
	}
	lm := datasets.Spec{Name: "lm", Task: datasets.LanguageModelling, DType: datasets.Int32, VocabSize: 256, PadToken: -1,
		Splits: []datasets.Split{{Name: "train", Size: 3}}, ExampleShape: []int{8}, LabelShape: []int{8}}
	if err := lm.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*datasets.Spec)
		want string
	}{
		{func(s *datasets.Spec) { s.Name = "" }, "empty Name"},
		{func(s *datasets.Spec) { s.Splits = nil }, "no splits"},
		{func(s *datasets.Spec) { s.Splits[1].Name = "train" }, `split "train" listed twice`},
		{func(s *datasets.Spec) { s.Splits[0].Size = -1 }, "size -1"},
		{func(s *datasets.Spec) { s.ExampleShape = []int{4, 0} }, "ExampleShape[1] = 0"},
		{func(s *datasets.Spec) { s.DType = "uint8" }, `unknown DType "uint8"`},
		{func(s *datasets.Spec) { s.DType = datasets.Int32 }, "VocabSize > 0"},
		{func(s *datasets.Spec) { s.Classes = s.Classes[:1] }, "≥ 2 classes"},
		{func(s *datasets.Spec) { s.LabelShape = []int{3} }, "labels are scalars"},
		{func(s *datasets.Spec) { s.Task = datasets.LanguageModelling }, "needs int32 token inputs"},
		{func(s *datasets.Spec) { s.Task = "regression" }, `unknown Task "regression"`},
	} {
		s := image()
		s.Splits = append([]datasets.Split(nil), s.Splits...)
		c.edit(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}
