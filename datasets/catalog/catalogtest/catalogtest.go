// Package catalogtest gives tests the real datasets of the catalog: loaded
// once per test binary, skipped with the command that installs them when
// they are absent — or failed instead when $PRISM_REQUIRE_DATA is 1, as CI
// sets it after `scripts/setup.sh data` has installed everything.
package catalogtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/catalog"
)

// EnvRequireData names the variable that turns a missing dataset from a
// skip into a failure.
const EnvRequireData = "PRISM_REQUIRE_DATA"

// Required reports whether missing data must fail tests.
func Required() bool { return os.Getenv(EnvRequireData) == "1" }

type loaded struct {
	once sync.Once
	d    datasets.InMemory
	err  error
}

var (
	mu    sync.Mutex
	cache = map[string]*loaded{}
)

// Open returns the named dataset from the default store, loading it at most
// once per test binary (the arrays are shared: do not modify them). When it
// is not installed the test is skipped with the fetch command, or fails if
// $PRISM_REQUIRE_DATA=1; any other error fails the test.
func Open(t testing.TB, name string) datasets.InMemory {
	t.Helper()
	mu.Lock()
	l, ok := cache[name]
	if !ok {
		l = &loaded{}
		cache[name] = l
	}
	mu.Unlock()
	l.once.Do(func() {
		store, err := catalog.NewStore("")
		if err != nil {
			l.err = err
			return
		}
		st, err := store.Status(context.Background(), name)
		if err != nil {
			l.err = err
			return
		}
		if !st.Present {
			l.err = &missingError{st.NotPresentError()}
			return
		}
		d, err := store.Open(context.Background(), name)
		if err != nil {
			l.err = err
			return
		}
		m, ok := d.(datasets.InMemory)
		if !ok {
			l.err = fmt.Errorf("dataset %s: loader does not keep the data in memory", name)
			return
		}
		l.d = m
	})
	if l.err != nil {
		if me, ok := l.err.(*missingError); ok {
			Missing(t, me.err.Error())
		}
		t.Fatal(l.err)
	}
	return l.d
}

type missingError struct{ err error }

func (e *missingError) Error() string { return e.err.Error() }

// Missing skips the test with why (which should say how to install the
// data), or fails it when $PRISM_REQUIRE_DATA=1.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (and $%s=1: the data must be present)", why, EnvRequireData)
	}
	t.Skipf("%s (set $%s=1 to make this a failure)", why, EnvRequireData)
}
