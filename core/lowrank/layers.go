package lowrank

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// LayerSource yields the named weight matrices of a model one at a time, so
// that a whole model never needs to be in memory. Load may be called from
// several goroutines at once (with different indices).
type LayerSource[T Float] interface {
	Len() int                                           // number of layers
	Name(i int) string                                  // name of layer i, 0 ≤ i < Len()
	Load(ctx context.Context, i int) (Matrix[T], error) // weight of layer i (m×n)
}

// SliceSource is a LayerSource over matrices already in memory.
type SliceSource[T Float] struct {
	Names   []string
	Weights []Matrix[T]
}

// Len returns the number of layers.
func (s SliceSource[T]) Len() int { return len(s.Names) }

// Name returns layer i's name.
func (s SliceSource[T]) Name(i int) string { return s.Names[i] }

// Load returns layer i's weight.
func (s SliceSource[T]) Load(_ context.Context, i int) (Matrix[T], error) { return s.Weights[i], nil }

// Progress is reported after each layer has been initialised.
type Progress struct {
	Done, Total int           // layers finished so far, of Total
	Layer       string        // the layer just finished
	Elapsed     time.Duration // since InitLayers started
}

// BatchOptions bounds the work of InitLayers.
type BatchOptions struct {
	// Workers is the number of layers decomposed at once; 0 → DefaultWorkers().
	Workers int
	// MaxInFlight bounds the layers loaded but not yet handed to the sink
	// (each holds W and, once done, A, B and Wres); 0 → 2·Workers. At least
	// Workers.
	MaxInFlight int
	// Progress, if set, is called after each layer finishes (from one
	// goroutine at a time, in completion order).
	Progress func(Progress)
}

// DefaultWorkers is the worker count InitLayers uses by default: one layer
// per CPU when BLAS runs single-threaded, else 1 (OpenBLAS already uses the
// cores inside each call).
func DefaultWorkers() int {
	if BLASThreads() > 1 {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// InitLayers initialises an adapter for every layer of src with config c,
// decomposing up to Workers layers in parallel and holding at most MaxInFlight
// matrices in memory. sink receives the adapters in index order 0, 1, … (never
// concurrently); an error from sink, Load or Init stops the work, as does ctx's
// cancellation. Errors name the layer.
func InitLayers[T Float](ctx context.Context, src LayerSource[T], c Config, o BatchOptions,
	sink func(i int, a Adapter[T]) error) error {
	total := src.Len()
	workers := o.Workers
	if workers <= 0 {
		workers = DefaultWorkers()
	}
	workers = max(1, min(workers, total))
	inFlight := o.MaxInFlight
	if inFlight <= 0 {
		inFlight = 2 * workers
	}
	inFlight = max(inFlight, workers)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()

	type result struct {
		a   Adapter[T]
		err error
	}
	slots := make(chan struct{}, inFlight) // a slot per layer loaded and not yet sunk
	jobs := make(chan int)
	results := make([]chan result, total)
	for i := range results {
		results[i] = make(chan result, 1)
	}

	var progressMu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				name := src.Name(i)
				var res result
				w, err := src.Load(ctx, i)
				if err != nil {
					res.err = fmt.Errorf("lowrank: loading layer %q: %w", name, err)
				} else if err := ctx.Err(); err != nil {
					res.err = context.Cause(ctx)
				} else {
					res.a, res.err = Init(name, w, c)
				}
				if res.err == nil && o.Progress != nil {
					progressMu.Lock()
					done++
					o.Progress(Progress{Done: done, Total: total, Layer: name, Elapsed: time.Since(start)})
					progressMu.Unlock()
				}
				results[i] <- res
			}
		}()
	}

	// Dispatch in index order; a slot is taken before a layer is loaded and
	// given back after it is sunk, so the earliest unsunk layer always holds one.
	go func() {
		defer close(jobs)
		for i := 0; i < total; i++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	var err error
	for i := 0; i < total && err == nil; i++ {
		select {
		case res := <-results[i]:
			switch {
			case res.err != nil:
				err = res.err
			default:
				if serr := sink(i, res.a); serr != nil {
					err = fmt.Errorf("lowrank: layer %q: %w", src.Name(i), serr)
				}
			}
			<-slots
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
	}
	if err != nil {
		// Stops the dispatcher (which then closes jobs); workers finish the
		// layer in hand (results are buffered) and exit.
		cancel(err)
	}
	wg.Wait()
	return err
}
