package catalog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/text"
)

// DefaultSeqLen is the default number of byte tokens per text example.
const DefaultSeqLen = 256

// kjvRange is the verse range that covers the whole Bible.
const kjvRange = "Gen1:1-Rev22:21"

var kjvFiles = []File{
	{"kjv.txt", 4298239, "6f74f5589333c56c263963e6347dba662bae2d96861302e690aaae0b4a855eda"},
}

var austenFiles = []File{
	{"Rdata.rdx", 262, "cab8cbe4ce965d3b42b35c03383bafccc0eb78151f70e4748ead45270470c22f"},
	{"Rdata.rdb", 1601335, "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21"},
}

var fortunesFiles = []File{
	{"art", 85327, "600b8197bc994fd4fcbb623aa5e700629540af44f044d4907886bd1031f160ce"},
	{"computers", 237981, "a86be224d9f733b88eeaf8a46ea0427e05cc69c69edcf5f6db47ddf561ca37fd"},
	{"cookie", 245093, "5dc97eee96dcc5287c373be629482730d45f77b59da1287933c9c5f482a055eb"},
	{"debian", 15615, "491dd04bf909b64152bcb554b9bc88df0ca50c0dc676d74d10742bf38aaa50de"},
	{"definitions", 180268, "57be4744c353d931fa2ca95f50215d4b67539f5a527ae628a6441fb4a1258caa"},
	{"disclaimer", 10749, "c085d66ea68686d5e28852cef77c3eeb3640895c5647b148deeaaada2c07fa7b"},
	{"drugs", 40931, "a5a59ee8b0e1fd3085a38dfa29149fe9a2c8d7f256b74aea71aa2cc08a9990c1"},
	{"education", 39280, "ba13321d6d6beb7a6e65296a47450bfc87b24a319fff2e94762011b59a31aa35"},
	{"ethnic", 34364, "61695cb9b60dbee91755027da1fa4f850f4c6386ff38197a48e4ff1696385e19"},
	{"food", 34377, "78077a65b9288df71e7b2a8e8258cd3b1005d1282f7c7e57ad53927f374df45d"},
	{"fortunes", 24516, "8819e6b83bacd6b7e8a4a2483f41e126b3b4b3ef8cd2aca907a53b163f082fd5"},
	{"goedel", 7391, "9d447862c803f22cdf7bb26cb70cca1a7f8a2a7992f2793ddcb43cfcf3302ab0"},
	{"humorists", 42446, "ffdf67e1f4049133bf904b769c364de45e5ae0abfb3ea7c9afb54b87b89acfc4"},
	{"kids", 28587, "82e51834990afd36f2ea2f25864b368e2f44f9c761aba034035b26061de6d5be"},
	{"knghtbrd", 87971, "c25e8373b38a6f159a7b1d336f363d5c962224a6ddcc86279dec47aad3c869b3"},
	{"law", 56657, "f04141f94e788b7899e0adb0490d182ce711f8fdbb8252343a5257e717e9279d"},
	{"linux", 58496, "85b0e5eadf7adeea77da4e1fbd456c962ce3bd1dabbd053098ecf37de9169cf3"},
	{"linuxcookie", 19466, "4f75959924ae5bb1955c30a5c985e641ec17cd5ebb7453d839f94b1988331202"},
	{"literature", 53589, "22eab7d53ce994d0466901bb0d799ae3289603e17dc0bdb7f16666931155c5a5"},
	{"love", 20423, "4d4fb7c540e5500e44643524dae41dd7d2b21b80be184253fd9f8541f6029fc5"},
	{"medicine", 19193, "18b8c7b098e649024159c9d9f3e37a0832bbd2d5cf3e2317b313134761afd487"},
	{"men-women", 101843, "8fc4eb68a8d16826372d9bfdc910c8ab917b8aa59e2aac533f3ec2b49a1314ba"},
	{"miscellaneous", 48174, "e3d81fd016f9f84a70ecb9aa197c4911aca01a8034e49345b81093f6751bba9c"},
	{"news", 11322, "4b8eebae510353d6f628dfdaf52bf8cbdafb891a122b146421c805b74f389617"},
	{"paradoxum", 6383, "85228975016fe975065eaf0baf55980d32d26f9e2fa99f69da4696d11ac02036"},
	{"people", 153878, "2afb4b9f577be114d2dca279bc5590ee8415e1405295d7d7626c888d82f338e8"},
	{"perl", 40182, "b19145eadf97c31add2e0a199d93ffa0eb92e00275c2724b7ad6b4e412113536"},
	{"pets", 7225, "084472564bc55df566733a224f8a737d78717132ec43628be0c2af466ac41ecc"},
	{"platitudes", 35626, "88448274efec3d2c0908cc11525c9b065b95a32c232a2c58c67a87dd88545ee5"},
	{"politics", 114921, "b56ca45a046edd5c459090a5c6b335332661b436e814b41ac87bb58065ad6131"},
	{"riddles", 20294, "bcaaab907b156a18a8943f0768828b4f1a18d382497d0e2ef012fe6aaa27becc"},
	{"science", 129991, "7ab350b142ee6c70c1d8517c5a1b3790c09b190a62859427cad98e6e35a19fcc"},
	{"songs-poems", 233975, "eb714d297b468da91b6ca32baefb000279a3e3740b09f8a87db24fe58e010b1a"},
	{"sports", 37317, "b71dd524d7bca888ec1014fb849a8a15cf58017c59127e572d393ef7632c35c8"},
	{"startrek", 30216, "7b2e4c235b99452b2de4c47d67aae0faac2ea508a2d644609e4ef5db7653c39c"},
	{"tao", 37143, "4adddc35a122bb233a16c076abc0be0326ea3a68594146a6baee3b5f6489e12b"},
	{"wisdom", 61623, "9b0bd6b9331a68c9172219784a411c417c055ed69734edc7b4406795b87d4e94"},
	{"work", 106982, "ad8a0e104160e2c4782fa86e143cd60ffab2872985d4293ffd0af6df19dbfa28"},
	{"zippy", 38978, "b996a112c99a2d61782e1a9a1f3c5445122f18ac312485f2c78279e82ca33932"},
}

// lmSpec is the Spec of a byte-level language-modelling set with the
// default sequence length; sizes are those text.LanguageModel yields.
func lmSpec(name, description string, train, validation, test int) func() datasets.Spec {
	return func() datasets.Spec {
		return datasets.Spec{
			Name: name, Description: description, Task: datasets.LanguageModelling,
			Splits: []datasets.Split{{Name: datasets.Train, Size: train}, {Name: datasets.Validation, Size: validation},
				{Name: datasets.Test, Size: test}},
			ExampleShape: []int{DefaultSeqLen}, LabelShape: []int{DefaultSeqLen}, DType: datasets.Int32,
			VocabSize: text.VocabSize, PadToken: -1,
		}
	}
}

func seqLen(o LoadOptions) int {
	if o.SeqLen > 0 {
		return o.SeqLen
	}
	return DefaultSeqLen
}

var kjvEntry = Entry{
	Name: "kjv",
	Source: Source{Kind: Debian, Package: "bible-kjv", Also: []string{"bible-kjv-text"}, Version: "4.38",
		Produced: "bible -l0 " + kjvRange},
	Files:  kjvFiles,
	Loader: "text-lm-bytes/1 (units = chapters; test u%20=19, validation u%20=18)",
	SeqLen: DefaultSeqLen,
	spec: lmSpec("kjv", "King James Bible (Debian bible-kjv), byte tokens; one unit per chapter",
		14622, 799, 791),
	load: func(spec datasets.Spec, dir string, o LoadOptions) (datasets.Dataset, error) {
		units, err := text.KJVUnits(filepath.Join(dir, kjvFiles[0].Name))
		if err != nil {
			return nil, err
		}
		return text.LanguageModel(text.Options{Name: spec.Name, Description: spec.Description, SeqLen: seqLen(o), Checksum: spec.Checksum}, units)
	},
	produce: produceKJV,
}

var austenEntry = Entry{
	Name:   "austen",
	Source: Source{Kind: Debian, Package: "r-cran-janeaustenr", Version: "1.0.0-1", Path: "usr/lib/R/site-library/janeaustenr/data"},
	Files:  austenFiles,
	Loader: "text-lm-bytes/1 (units = front matter and chapters; test u%20=19, validation u%20=18)",
	SeqLen: DefaultSeqLen,
	spec: lmSpec("austen", "Jane Austen's six novels (Debian r-cran-janeaustenr, R data read directly), byte tokens; one unit per chapter",
		14057, 914, 751),
	load: func(spec datasets.Spec, dir string, o LoadOptions) (datasets.Dataset, error) {
		units, err := text.AustenUnits(filepath.Join(dir, "Rdata.rdx"), filepath.Join(dir, "Rdata.rdb"))
		if err != nil {
			return nil, err
		}
		return text.LanguageModel(text.Options{Name: spec.Name, Description: spec.Description, SeqLen: seqLen(o), Checksum: spec.Checksum}, units)
	},
}

var fortunesEntry = Entry{
	Name:   "fortunes",
	Source: Source{Kind: Debian, Package: "fortunes", Also: []string{"fortunes-min"}, Version: "1:1.99.1-7.3", Path: "usr/share/games/fortunes"},
	Files:  fortunesFiles,
	Loader: "text-class-bytes/1 (39 categories with ≥ 50 fortunes; test k%5=4 per class; pad 0)",
	SeqLen: DefaultSeqLen,
	spec: func() datasets.Spec {
		return datasets.Spec{
			Name: "fortunes", Description: "fortune cookies by category (Debian fortunes), byte tokens truncated/padded to 256, 39 classes",
			Task:         datasets.Classification,
			Splits:       []datasets.Split{{Name: datasets.Train, Size: 12144}, {Name: datasets.Test, Size: 3019}},
			ExampleShape: []int{DefaultSeqLen}, DType: datasets.Int32, VocabSize: text.VocabSize, PadToken: text.PadToken,
			Classes: append([]string(nil), text.FortuneCategories...),
		}
	},
	load: func(spec datasets.Spec, dir string, o LoadOptions) (datasets.Dataset, error) {
		texts, err := text.FortuneTexts(dir)
		if err != nil {
			return nil, err
		}
		return text.Classification(text.Options{Name: spec.Name, Description: spec.Description, SeqLen: seqLen(o), Checksum: spec.Checksum},
			text.FortuneCategories, texts)
	},
}

// produceKJV writes kjv.txt from `bible -l0 Gen1:1-Rev22:21` (no line
// wrapping, so the output does not depend on $COLUMNS): the installed
// bible-kjv when there is one, else the program and its data taken from
// the two .debs (apt-get download + dpkg-deb -x into tmp, `bible -p` to
// point it at its data).
func produceKJV(ctx context.Context, s *Store, e Entry, tmp, dest string) error {
	args := []string{"-l0"}
	bible := filepath.Join(s.systemRoot, "/usr/bin/bible")
	_, berr := os.Stat(bible)
	if _, derr := os.Stat(filepath.Join(s.systemRoot, "/usr/lib/bible.data")); berr != nil || derr != nil {
		debs, err := s.downloadDebs(ctx, e, tmp, append([]string{e.Source.Package}, e.Source.Also...))
		if err != nil {
			return err
		}
		root := filepath.Join(tmp, "root")
		for _, deb := range debs {
			if err := run(ctx, tmp, "this needs a Debian-based system", "dpkg-deb", "-x", deb, root); err != nil {
				return err
			}
		}
		bible = filepath.Join(root, "usr", "bin", "bible")
		args = append(args, "-p", filepath.Join(root, "usr", "lib"))
	}
	args = append(args, kjvRange)
	s.logf("%s: %s %v", e.Name, bible, args)
	cmd := exec.CommandContext(ctx, bible, args...)
	cmd.Env = append(os.Environ(), "COLUMNS=80")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", bible, err)
	}
	werr := s.writeVerified(out, filepath.Join(dest, kjvFiles[0].Name), kjvFiles[0], "the output of bible")
	if werr != nil {
		_ = cmd.Process.Kill()
	}
	err = cmd.Wait()
	if werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("`bible %v` failed: %v\n%s", args, err, stderr.String())
	}
	return nil
}

// tailBuffer keeps the last 4 kB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
