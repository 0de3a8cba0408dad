package lowrank_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/lowrank/lowranktest"
)

// countingSource generates layer i lazily and tracks how many matrices are
// loaded but not yet handed to the sink.
type countingSource struct {
	shapes  [][2]int
	failAt  int // Load fails for this index (−1: never)
	mu      sync.Mutex
	live    int
	maxLive int
	loads   []int
}

func (s *countingSource) Len() int          { return len(s.shapes) }
func (s *countingSource) Name(i int) string { return fmt.Sprintf("blocks.%d.attn.qkv", i) }
func (s *countingSource) Load(ctx context.Context, i int) (lowrank.Matrix[float64], error) {
	if i == s.failAt {
		return lowrank.Matrix[float64]{}, errors.New("truncated tensor data")
	}
	s.mu.Lock()
	s.live++
	s.maxLive = max(s.maxLive, s.live)
	s.loads = append(s.loads, i)
	s.mu.Unlock()
	return s.weight(i), nil
}

func (s *countingSource) weight(i int) lowrank.Matrix[float64] {
	sh := s.shapes[i]
	return lowranktest.Gaussian[float64](sh[0], sh[1], uint64(i))
}

func (s *countingSource) sunk() {
	s.mu.Lock()
	s.live--
	s.mu.Unlock()
}

func newSource(n int) *countingSource {
	shapes := make([][2]int, n)
	for i := range shapes {
		shapes[i] = [2]int{12 + i%5, 9 + (i*7)%11}
	}
	return &countingSource{shapes: shapes, failAt: -1}
}

func TestInitLayers(t *testing.T) {
	cfg := lowrank.Config{Method: lowrank.MethodMid, Rank: 3, Alpha: 6}
	for _, tc := range []struct{ workers, inFlight int }{{1, 1}, {2, 2}, {3, 4}, {4, 0}} {
		t.Run(fmt.Sprintf("workers=%d,inflight=%d", tc.workers, tc.inFlight), func(t *testing.T) {
			src := newSource(23)
			var order []int
			var progress []lowrank.Progress
			err := lowrank.InitLayers(context.Background(), src, cfg, lowrank.BatchOptions{
				Workers: tc.workers, MaxInFlight: tc.inFlight,
				Progress: func(p lowrank.Progress) { progress = append(progress, p) },
			}, func(i int, a lowrank.Adapter[float64]) error {
				order = append(order, i)
				want, err := lowrank.Init(src.Name(i), src.weight(i), cfg)
				if err != nil {
					return err
				}
				if a.Layer != src.Name(i) || !slices.Equal(a.A.Data, want.A.Data) || !slices.Equal(a.B.Data, want.B.Data) ||
					!slices.Equal(a.Base.Data, want.Base.Data) {
					t.Errorf("layer %d: adapter differs from Init's", i)
				}
				src.sunk()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := seq(23); !slices.Equal(order, want) {
				t.Errorf("sink order %v", order)
			}
			limit := tc.inFlight
			if limit == 0 {
				limit = 2 * tc.workers
			}
			if src.maxLive > limit {
				t.Errorf("%d matrices in memory at once, limit %d", src.maxLive, limit)
			}
			if len(progress) != 23 {
				t.Fatalf("%d progress reports, want 23", len(progress))
			}
			for i, p := range progress {
				if p.Done != i+1 || p.Total != 23 || p.Layer == "" || p.Elapsed <= 0 {
					t.Errorf("progress %d: %+v", i, p)
				}
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestInitLayersErrors(t *testing.T) {
	cfg := lowrank.Config{Method: lowrank.MethodPiSSA, Rank: 2}
	t.Run("load", func(t *testing.T) {
		src := newSource(10)
		src.failAt = 6
		var sunk []int
		err := lowrank.InitLayers(context.Background(), src, cfg, lowrank.BatchOptions{Workers: 2},
			func(i int, a lowrank.Adapter[float64]) error { sunk = append(sunk, i); src.sunk(); return nil })
		if err == nil || !strings.Contains(err.Error(), `"blocks.6.attn.qkv"`) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("error %v does not name layer 6 and the cause", err)
		}
		if !slices.Equal(sunk, seq(6)) {
			t.Errorf("sunk %v before the failing layer", sunk)
		}
	})
	t.Run("init", func(t *testing.T) {
		src := newSource(10)
		src.shapes[4] = [2]int{1, 5} // rank 2 > k = 1
		err := lowrank.InitLayers(context.Background(), src, cfg, lowrank.BatchOptions{Workers: 3},
			func(i int, a lowrank.Adapter[float64]) error { src.sunk(); return nil })
		if err == nil || !strings.Contains(err.Error(), `"blocks.4.attn.qkv" (1×5`) {
			t.Fatalf("error %v does not name layer 4 and its shape", err)
		}
	})
	t.Run("sink", func(t *testing.T) {
		src := newSource(10)
		err := lowrank.InitLayers(context.Background(), src, cfg, lowrank.BatchOptions{Workers: 2},
			func(i int, a lowrank.Adapter[float64]) error {
				if i == 3 {
					return errors.New("disk full")
				}
				return nil
			})
		if err == nil || !strings.Contains(err.Error(), "blocks.3.attn.qkv") || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		src := newSource(200)
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := lowrank.InitLayers(ctx, src, cfg, lowrank.BatchOptions{Workers: 2},
			func(i int, a lowrank.Adapter[float64]) error {
				if n++; n == 5 {
					cancel()
				}
				return nil
			})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if n > 5+4 {
			t.Errorf("%d layers sunk after cancelling at 5", n)
		}
		if len(src.loads) > 5+4+1 {
			t.Errorf("%d layers loaded after cancelling at 5", len(src.loads))
		}
	})
}
