package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/prism-lora/prism/internal/atomicfile"
)

// Cache shares expensive resources between the runs of one process — above
// all the pretrained checkpoint, keyed by RunConfig.PretrainKey — computing
// each key once even when several runs ask at the same time. Errors are not
// cached: the next caller tries again. The zero value is ready to use.
type Cache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	done  chan struct{}
	value any
	err   error
}

// Do returns the value for key, calling build once if no value is cached;
// concurrent callers of the same key wait for that one call (or for their own
// ctx). build runs with the first caller's ctx.
func (c *Cache) Do(ctx context.Context, key string, build func(ctx context.Context) (any, error)) (any, error) {
	for {
		c.mu.Lock()
		if c.entries == nil {
			c.entries = map[string]*cacheEntry{}
		}
		e, ok := c.entries[key]
		if !ok {
			e = &cacheEntry{done: make(chan struct{})}
			c.entries[key] = e
			c.mu.Unlock()
			func() {
				defer func() {
					if r := recover(); r != nil {
						e.err = fmt.Errorf("experiment: building cached %q panicked: %v", key, r)
					}
				}()
				e.value, e.err = build(ctx)
			}()
			if e.err != nil {
				c.mu.Lock()
				delete(c.entries, key)
				c.mu.Unlock()
			}
			close(e.done)
			return e.value, e.err
		}
		c.mu.Unlock()
		select {
		case <-e.done:
			if e.err == nil {
				return e.value, nil
			}
			// The builder failed; try again ourselves unless we are done.
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

type cacheKey struct{}

// WithCache returns ctx carrying c; the runners put one Cache per sweep into
// every run's context.
func WithCache(ctx context.Context, c *Cache) context.Context {
	return context.WithValue(ctx, cacheKey{}, c)
}

// SharedCache returns the Cache carried by ctx, or a fresh private one (so
// run functions can always call it).
func SharedCache(ctx context.Context) *Cache {
	if c, ok := ctx.Value(cacheKey{}).(*Cache); ok && c != nil {
		return c
	}
	return &Cache{}
}

// BuildFileOnce makes sure path exists, building it at most once across
// processes that share the file system (runs of a Slurm array on one node,
// or parallel sweeps): it takes an exclusive lock on path+".lock", and if
// path is still missing calls build with a temporary name in the same
// directory, which is synced and renamed to path. A crash mid-build leaves
// only the temporary file (removed by the next builder's failure path or
// harmless). Use it for content-addressed caches, e.g. a pretrained
// checkpoint at DIR/<PretrainKey>.ckpt.
func BuildFileOnce(ctx context.Context, path string, build func(ctx context.Context, tmpPath string) error) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("experiment: cache directory: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("experiment: cache lock: %w", err)
	}
	defer lock.Close()
	if err := flockContext(ctx, lock); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return nil // built by someone else while we waited
	}
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	os.Remove(tmp)
	if err := build(ctx, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("experiment: cache %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("experiment: cache %s: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// flockContext takes an exclusive flock, giving up when ctx is done.
func flockContext(ctx context.Context, f *os.File) error {
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("experiment: locking %s: %w", f.Name(), err)
		}
		return nil
	case <-ctx.Done():
		// Closing the file releases the lock if the goroutine gets it later.
		return ctx.Err()
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
