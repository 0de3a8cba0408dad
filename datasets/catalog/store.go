package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/internal/atomicfile"
)

// Store is a data cache folder plus the system paths of Debian packages.
// The zero value is not usable; make one with NewStore.
type Store struct {
	// Dir is the data cache: dataset NAME's files live in Dir/NAME.
	Dir string
	// Rehash ignores remembered verifications and hashes every file again.
	Rehash bool
	// Log receives progress lines of fetches (nil: discarded).
	Log io.Writer

	// systemRoot prefixes system paths ("" in real use; tests point it at
	// a fake root).
	systemRoot string
	mu         sync.Mutex
}

// NewStore returns a Store on dir; "" means DefaultDir().
func NewStore(dir string) (*Store, error) {
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data cache %s: %w", dir, err)
	}
	return &Store{Dir: abs}, nil
}

// Open opens a dataset from the default store ($PRISM_DATA_DIR or
// ~/.cache/prism/data, and the system paths). A missing dataset's error
// says which command installs it.
func Open(ctx context.Context, name string) (datasets.Dataset, error) {
	s, err := NewStore("")
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, name)
}

// Where a dataset's files were found.
const (
	InSystem = "system" // where the Debian package installed them
	InCache  = "cache"  // in the data cache
)

// FileStatus is what was found for one expected file.
type FileStatus struct {
	File   File
	Path   string
	Found  bool
	Size   int64  // on disk (when Found)
	SHA256 string // computed or remembered (when Found)
	OK     bool   // size and checksum match the pins
	// Remembered: the checksum came from the verification cache (same
	// path, size and modification time as when it was last hashed).
	Remembered bool
}

// Status is the state of one dataset in a store.
type Status struct {
	Entry Entry
	// Present: every file was found in one place and matches its pins.
	Present bool
	// Location is InSystem or InCache when Present (else where files were
	// last looked for); Dir is that folder.
	Location string
	Dir      string
	Files    []FileStatus
	// Problem explains why the dataset is not Present ("" when it is).
	Problem string
}

// CacheDir is where the store keeps (or would fetch) a dataset's files.
func (s *Store) CacheDir(name string) string { return filepath.Join(s.Dir, name) }

// candidates lists the places to look, in order: the system path of an
// installed Debian package, then the cache.
func (s *Store) candidates(e Entry) [][2]string {
	var c [][2]string
	if sys := e.Source.SystemDir(); sys != "" {
		c = append(c, [2]string{InSystem, filepath.Join(s.systemRoot, sys)})
	}
	return append(c, [2]string{InCache, s.CacheDir(e.Name)})
}

// Status finds and verifies a dataset's files without fetching anything.
// It returns an error only for an unknown name or an unreadable file; a
// missing or mismatching dataset is a Status with Present false.
func (s *Store) Status(ctx context.Context, name string) (Status, error) {
	e, err := Lookup(name)
	if err != nil {
		return Status{}, err
	}
	st := Status{Entry: e}
	var firstFound *Status
	for _, c := range s.candidates(e) {
		cand := Status{Entry: e, Location: c[0], Dir: c[1]}
		found := 0
		ok := true
		for _, f := range e.Files {
			if err := ctx.Err(); err != nil {
				return Status{}, err
			}
			fs, err := s.verify(filepath.Join(c[1], f.Name), f)
			if err != nil {
				return Status{}, err
			}
			cand.Files = append(cand.Files, fs)
			if fs.Found {
				found++
			}
			if !fs.OK {
				ok = false
				if cand.Problem == "" {
					cand.Problem = fileProblem(fs)
				}
			}
		}
		if ok {
			cand.Present = true
			return cand, nil
		}
		if found > 0 && firstFound == nil {
			cp := cand
			firstFound = &cp
		}
	}
	if firstFound != nil {
		return *firstFound, nil
	}
	// Nothing anywhere: report the cache folder, where a fetch puts it.
	st.Location, st.Dir = InCache, s.CacheDir(e.Name)
	for _, f := range e.Files {
		st.Files = append(st.Files, FileStatus{File: f, Path: filepath.Join(st.Dir, f.Name)})
	}
	st.Problem = "not installed"
	return st, nil
}

func fileProblem(fs FileStatus) string {
	switch {
	case !fs.Found:
		return fmt.Sprintf("%s is missing", fs.Path)
	case fs.Size != fs.File.Size:
		return fmt.Sprintf("%s has %d bytes, expected %d", fs.Path, fs.Size, fs.File.Size)
	default:
		return fmt.Sprintf("%s has SHA-256 %s, expected %s", fs.Path, fs.SHA256, fs.File.SHA256)
	}
}

// Open finds, verifies and loads a dataset. When it is missing or its
// files do not match their checksums, the error names what is wrong and
// the command that installs it.
func (s *Store) Open(ctx context.Context, name string) (datasets.Dataset, error) {
	return s.OpenWith(ctx, name, LoadOptions{})
}

// OpenWith is Open with load options (e.g. the sequence length of a text
// dataset); the Spec's Checksum is the fingerprint of those options.
func (s *Store) OpenWith(ctx context.Context, name string, o LoadOptions) (datasets.Dataset, error) {
	st, err := s.Status(ctx, name)
	if err != nil {
		return nil, err
	}
	if !st.Present {
		return nil, st.NotPresentError()
	}
	if o.SeqLen < 0 {
		return nil, fmt.Errorf("dataset %s: SeqLen %d, want ≥ 0", name, o.SeqLen)
	}
	spec := st.Entry.Spec()
	spec.Checksum = st.Entry.Fingerprint(o)
	return st.Entry.load(spec, st.Dir, o)
}

// NotPresentError is the error for a dataset that is not Present: what is
// wrong and how to install it.
func (st Status) NotPresentError() error {
	if st.Problem == "not installed" {
		return fmt.Errorf("dataset %s is not installed (looked in %s): %s",
			st.Entry.Name, st.Dir, st.Entry.InstallHint())
	}
	return fmt.Errorf("dataset %s: %s: %s", st.Entry.Name, st.Problem, st.Entry.InstallHint())
}

// verification is a remembered hash.
type verification struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

const verifiedFile = "verified.json"

// verify stats and (unless remembered) hashes the file at path against f.
func (s *Store) verify(path string, f File) (FileStatus, error) {
	fs := FileStatus{File: f, Path: path}
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fs, nil
	}
	if err != nil {
		return fs, fmt.Errorf("dataset file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return fs, fmt.Errorf("dataset file %s: not a regular file", path)
	}
	fs.Found, fs.Size = true, info.Size()
	if fs.Size != f.Size {
		return fs, nil // wrong length: no need to hash
	}
	key, _ := filepath.Abs(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	known := s.loadVerified()
	if v, ok := known[key]; ok && !s.Rehash && v.Size == fs.Size && v.ModTime == info.ModTime().UnixNano() {
		fs.SHA256, fs.Remembered = v.SHA256, true
	} else {
		sum, err := hashFile(path)
		if err != nil {
			return fs, err
		}
		fs.SHA256 = sum
		known[key] = verification{Size: fs.Size, ModTime: info.ModTime().UnixNano(), SHA256: sum}
		s.saveVerified(known)
	}
	fs.OK = fs.SHA256 == f.SHA256
	return fs, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("dataset file %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("dataset file %s: hashing: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// loadVerified reads the remembered hashes; a missing or unreadable file is
// an empty memory (it is only a cache).
func (s *Store) loadVerified() map[string]verification {
	m := map[string]verification{}
	b, err := os.ReadFile(filepath.Join(s.Dir, verifiedFile))
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// saveVerified writes the remembered hashes atomically (temp + rename);
// failure (a read-only cache) only costs re-hashing next time.
func (s *Store) saveVerified(m map[string]verification) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return
	}
	_ = atomicfile.Write(filepath.Join(s.Dir, verifiedFile), b) // a cache: failing to write it only costs a re-hash
}
