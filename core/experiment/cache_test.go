package experiment

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCacheBuildsOncePerKey(t *testing.T) {
	var c Cache
	var builds atomic.Int32
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]any, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Do(ctx, "k", func(context.Context) (any, error) {
				builds.Add(1)
				time.Sleep(20 * time.Millisecond)
				return "checkpoint", nil
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		}()
	}
	wg.Wait()
	if builds.Load() != 1 {
		t.Errorf("built %d times for 16 concurrent callers, want 1", builds.Load())
	}
	for _, v := range results {
		if v != "checkpoint" {
			t.Errorf("got %v", v)
		}
	}
	// Errors are not cached: the next caller builds again.
	fail := errors.New("disk full")
	if _, err := c.Do(ctx, "e", func(context.Context) (any, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Errorf("got %v", err)
	}
	if v, err := c.Do(ctx, "e", func(context.Context) (any, error) { return 7, nil }); err != nil || v != 7 {
		t.Errorf("retry after error: %v %v", v, err)
	}
	// A panicking builder is an error, not a crash.
	if _, err := c.Do(ctx, "p", func(context.Context) (any, error) { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic: %v", err)
	}
	// A waiter whose context ends stops waiting.
	started := make(chan struct{})
	release := make(chan struct{})
	go c.Do(ctx, "slow", func(context.Context) (any, error) { close(started); <-release; return 1, nil })
	<-started
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(cctx, "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter with expired context: %v", err)
	}
	close(release)
	// SharedCache returns the cache in the context, or a private one.
	if SharedCache(WithCache(ctx, &c)) != &c || SharedCache(ctx) == nil {
		t.Error("SharedCache")
	}
}

func TestBuildFileOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache", "base.ckpt")
	var builds atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each call opens its own lock file description, so these
			// contend exactly like separate processes would.
			err := BuildFileOnce(context.Background(), path, func(ctx context.Context, tmp string) error {
				builds.Add(1)
				time.Sleep(10 * time.Millisecond)
				return os.WriteFile(tmp, []byte("weights"), 0o644)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if builds.Load() != 1 {
		t.Errorf("built %d times, want 1", builds.Load())
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "weights" {
		t.Errorf("file: %q %v", data, err)
	}
	// A failing build leaves nothing behind.
	bad := filepath.Join(t.TempDir(), "bad.ckpt")
	err := BuildFileOnce(context.Background(), bad, func(ctx context.Context, tmp string) error {
		os.WriteFile(tmp, []byte("half"), 0o644)
		return errors.New("interrupted")
	})
	if err == nil {
		t.Fatal("failing build succeeded")
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("failed build left the file")
	}
	left, _ := filepath.Glob(bad + ".tmp*")
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestRecordFileRoundTrip(t *testing.T) {
	cfg := RunConfig{Schema: RunSchema, Kind: "k", Model: ModelConfig{Name: "m", Params: map[string]any{"w": 3.0}},
		Finetune: FinetuneConfig{Tasks: []string{"b"}}, Method: "window", Window: &Window{Preset: "fraction", Fraction: 0.25},
		Rank: 4, Alpha: 8, LearningRate: 1e-3, Epochs: 2}
	rec := RunRecord{
		ID: cfg.MustID(), Config: cfg, Status: StatusDone, Host: "h", Executor: "local",
		Started:  time.Date(2026, 1, 1, 0, 0, 0, 123, time.UTC),
		Finished: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
		Result: Result{
			Metrics:   map[string]float64{"b_acc": 81.5, "nan": math.NaN(), "inf": math.Inf(-1), "tiny": 5e-324},
			Curves:    map[string][]CurvePoint{"loss": {{Epoch: 0.5, Value: 2.25}, {Epoch: 1, Value: math.Inf(1)}}},
			Summaries: []Summary{{Scope: "l", Key: "d", Value: 1.0 / 3, Text: "x"}},
		},
	}
	path := filepath.Join(t.TempDir(), "result.json")
	if err := WriteRecordFile(path, rec); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(got.Result.Metrics["nan"]) || !math.IsInf(got.Result.Metrics["inf"], -1) || !math.IsInf(got.Result.Curves["loss"][1].Value, 1) {
		t.Errorf("non-finite values lost: %+v", got.Result)
	}
	delete(got.Result.Metrics, "nan")
	delete(rec.Result.Metrics, "nan")
	if !reflect.DeepEqual(got, rec) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rec)
	}
	// A record whose configuration was edited no longer matches its ID.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), `"learning_rate": 0.001`, `"learning_rate": 0.002`, 1)), 0o644)
	if _, err := ReadRecordFile(path); err == nil || !strings.Contains(err.Error(), "does not match its configuration") {
		t.Errorf("edited record: %v", err)
	}
	os.WriteFile(path, []byte(`{"id": "x", "surprise": 1}`), 0o644)
	if _, err := ReadRecordFile(path); err == nil || !strings.Contains(err.Error(), "not a run record") {
		t.Errorf("unknown field: %v", err)
	}
	rec.Status, rec.Error = StatusFailed, ""
	if err := rec.Check(); err == nil {
		t.Error("failed record without a reason accepted")
	}
}
