package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
	"github.com/prism-lora/prism/plugins/proto/prismpb"
	"github.com/prism-lora/prism/plugins/protocol"
)

// DatasetPlugin is a dataset plugin used as a datasets.Dataset. Every batch
// is checked against the spec (shapes, dtypes, sizes, finite inputs, labels
// and tokens in range, example indices in the split) and the pass must
// yield exactly the batches that the options imply.
type DatasetPlugin struct {
	host *Host
	proc *process
	spec datasets.Spec
}

var _ datasets.Dataset = (*DatasetPlugin)(nil)

// Dataset starts the named dataset plugin (or reuses its running process),
// reads and validates its spec, and returns it.
func (h *Host) Dataset(ctx context.Context, name string) (*DatasetPlugin, error) {
	in, err := h.Find(protocol.KindDataset, name)
	if err != nil {
		return nil, err
	}
	dp := &DatasetPlugin{host: h, proc: h.process(in)}
	c, err := dp.client()
	if err != nil {
		return nil, err
	}
	callCtx, cancel := h.withDeadline(ctx)
	defer cancel()
	p, err := c.Spec(callCtx, &prismpb.Empty{})
	if err != nil {
		return nil, dp.proc.callError(ctx, callCtx, "Spec", h.opts.CallTimeout, err)
	}
	if dp.spec, err = protocol.SpecFromPB(p); err != nil {
		return nil, dp.proc.fail("Spec", FaultInvalidOutput, err)
	}
	if dp.spec.Name != name {
		return nil, dp.proc.fail("Spec", FaultInvalidOutput, fmt.Errorf("it calls itself %q but is installed as %q", dp.spec.Name, name))
	}
	return dp, nil
}

// Installed is where the plugin was found and its checksum status.
func (d *DatasetPlugin) Installed() Installed { return d.proc.inst }

// Spec is the plugin's dataset spec, read when it was opened.
func (d *DatasetPlugin) Spec() datasets.Spec { return d.spec }

// Close stops the plugin's process.
func (d *DatasetPlugin) Close() error {
	d.proc.close()
	return nil
}

func (d *DatasetPlugin) client() (prismpb.DatasetClient, error) {
	raw, err := d.proc.get()
	if err != nil {
		return nil, err
	}
	c, ok := raw.(prismpb.DatasetClient)
	if !ok {
		return nil, d.proc.fail("start", FaultHandshake, fmt.Errorf("dispensed %T, not a dataset client", raw))
	}
	return c, nil
}

// Batches opens a pass over one split. Each Next must get its batch within
// the host's call deadline, or the plugin is killed.
func (d *DatasetPlugin) Batches(ctx context.Context, o datasets.BatchOptions) (datasets.Batches, error) {
	if err := o.Check(d.spec); err != nil {
		return nil, err
	}
	c, err := d.client()
	if err != nil {
		return nil, err
	}
	n, _ := d.spec.SplitSize(o.Split)
	shards := max(o.NumShards, 1)
	lo, hi := dense.ShardRange(n, o.Shard, shards)
	it := &pluginBatches{
		d: d, parent: ctx, opts: o, splitSize: n,
		numBatches: dense.NumBatches(hi-lo, o.BatchSize, o.DropLast),
		op:         fmt.Sprintf("Batches split %q", o.Split),
	}
	it.ctx, it.cancel = context.WithCancel(ctx)
	it.timer = time.AfterFunc(d.host.opts.CallTimeout, it.expire)
	stream, err := c.Batches(it.ctx, protocol.OptionsToPB(o))
	if err != nil {
		it.Close()
		return nil, d.proc.callError(ctx, it.ctx, it.op, d.host.opts.CallTimeout, err)
	}
	it.stream = stream
	return it, nil
}

// pluginBatches iterates over a plugin's batch stream.
type pluginBatches struct {
	d          *DatasetPlugin
	parent     context.Context
	ctx        context.Context
	cancel     context.CancelFunc
	stream     prismpb.Dataset_BatchesClient
	opts       datasets.BatchOptions
	splitSize  int
	numBatches int
	op         string

	timer   *time.Timer
	mu      sync.Mutex
	expired bool

	got  int
	done bool
	err  error
}

// expire is the deadline of one Next: cancel the stream, mark it.
func (it *pluginBatches) expire() {
	it.mu.Lock()
	it.expired = true
	it.mu.Unlock()
	it.cancel()
}

func (it *pluginBatches) NumBatches() int { return it.numBatches }

func (it *pluginBatches) Close() error {
	it.timer.Stop()
	it.cancel()
	it.done = true
	return nil
}

// Next receives the next batch into dst (reusing its slices).
func (it *pluginBatches) Next(dst *datasets.Batch) error {
	if it.err != nil {
		return it.err
	}
	if it.done {
		return io.EOF
	}
	it.timer.Reset(it.d.host.opts.CallTimeout)
	err := it.next(dst)
	it.timer.Stop()
	if err == io.EOF {
		it.Close()
		return io.EOF
	}
	if err != nil {
		it.err = it.classify(err)
		it.Close()
		return it.err
	}
	return nil
}

// classify turns a stream error into a plugin error (or the caller's ctx error).
func (it *pluginBatches) classify(err error) error {
	var pe *Error
	op := fmt.Sprintf("%s batch %d", it.op, it.got)
	if errors.As(err, &pe) && pe.Op == "" {
		return it.d.proc.fail(op, pe.Fault, pe.Err)
	}
	it.mu.Lock()
	expired := it.expired
	it.mu.Unlock()
	if expired && it.parent.Err() == nil {
		it.d.proc.kill()
		return it.d.proc.fail(op, FaultTimeout, fmt.Errorf("no batch within %v", it.d.host.opts.CallTimeout))
	}
	return it.d.proc.callError(it.parent, it.ctx, op, it.d.host.opts.CallTimeout, err)
}

func frameErr(fault Fault, format string, args ...any) error {
	return &Error{Fault: fault, Err: fmt.Errorf(format, args...)}
}

func (it *pluginBatches) next(dst *datasets.Batch) error {
	f, err := it.stream.Recv()
	if err == io.EOF {
		if it.got != it.numBatches {
			return frameErr(FaultProtocol, "the pass ended after %d batches, want %d", it.got, it.numBatches)
		}
		return io.EOF
	}
	if err != nil {
		return err
	}
	h := f.GetHeader()
	if h == nil {
		return frameErr(FaultProtocol, "expected a batch header, got a chunk")
	}
	if it.got >= it.numBatches {
		return frameErr(FaultProtocol, "more than the %d batches the options imply", it.numBatches)
	}
	size := int(h.GetSize())
	if err := it.checkHeader(h, size); err != nil {
		return err
	}
	x := protocol.Tensor{F32: dst.Inputs, I32: dst.Tokens}
	recv, err := protocol.NewReceiver(h.GetTensors(), x, protocol.Tensor{I32: dst.Labels}, protocol.Tensor{I32: dst.Indices})
	if err != nil {
		return frameErr(FaultProtocol, "%v", err)
	}
	for !recv.Complete() {
		f, err := it.stream.Recv()
		if err == io.EOF {
			_, err = recv.Tensors()
			return frameErr(FaultProtocol, "the stream ended inside a batch: %v", err)
		}
		if err != nil {
			return err
		}
		c := f.GetChunk()
		if c == nil {
			return frameErr(FaultProtocol, "a header inside a batch")
		}
		if err := recv.Add(c); err != nil {
			return frameErr(FaultProtocol, "%v", err)
		}
	}
	ts, err := recv.Tensors()
	if err != nil {
		return frameErr(FaultProtocol, "%v", err)
	}
	b := datasets.Batch{Size: size, Labels: ts[1].I32, Indices: ts[2].I32}
	if it.d.spec.DType == datasets.Int32 {
		b.Tokens, b.Inputs = ts[0].I32, dst.Inputs[:0]
	} else {
		b.Inputs, b.Tokens = ts[0].F32, dst.Tokens[:0]
	}
	if err := it.checkValues(&b); err != nil {
		return err
	}
	*dst = b
	it.got++
	return nil
}

// checkHeader checks a batch's announced tensors before anything is read.
func (it *pluginBatches) checkHeader(h *prismpb.BatchHeader, size int) error {
	s := it.d.spec
	if size < 1 || size > it.opts.BatchSize || it.opts.DropLast && size != it.opts.BatchSize {
		return frameErr(FaultInvalidOutput, "batch of %d examples (batch size %d, drop last %v)", size, it.opts.BatchSize, it.opts.DropLast)
	}
	xd := prismpb.DType_FLOAT32
	if s.DType == datasets.Int32 {
		xd = prismpb.DType_INT32
	}
	want := []struct {
		name  string
		dtype prismpb.DType
		shape []int64
	}{
		{protocol.TensorX, xd, append([]int64{int64(size)}, toInt64s(s.ExampleShape)...)},
		{protocol.TensorY, prismpb.DType_INT32, append([]int64{int64(size)}, toInt64s(s.LabelShape)...)},
		{protocol.TensorIndices, prismpb.DType_INT32, []int64{int64(size)}},
	}
	ts := h.GetTensors()
	if len(ts) != len(want) {
		return frameErr(FaultInvalidOutput, "batch with %d tensors, want x, y, indices", len(ts))
	}
	for i, w := range want {
		if ts[i].GetName() != w.name || ts[i].GetDtype() != w.dtype || !slices.Equal(ts[i].GetShape(), w.shape) {
			return frameErr(FaultInvalidOutput, "batch tensor %d is %q %v %v, want %q %v %v",
				i, ts[i].GetName(), ts[i].GetDtype(), ts[i].GetShape(), w.name, w.dtype, w.shape)
		}
	}
	return nil
}

// checkValues checks a batch's contents against the spec.
func (it *pluginBatches) checkValues(b *datasets.Batch) error {
	s := it.d.spec
	for i, v := range b.Inputs {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return frameErr(FaultInvalidOutput, "input value %g of example %d is not finite", f, i/max(s.ExampleSize(), 1))
		}
	}
	for i, tok := range b.Tokens {
		if tok < 0 || int(tok) >= s.VocabSize {
			return frameErr(FaultInvalidOutput, "token %d of example %d outside [0, %d)", tok, i/max(s.ExampleSize(), 1), s.VocabSize)
		}
	}
	limit := s.VocabSize
	if s.Task == datasets.Classification {
		limit = len(s.Classes)
	}
	for i, y := range b.Labels {
		if (y < 0 || int(y) >= limit) && !(s.Task == datasets.LanguageModelling && y == s.PadToken) {
			return frameErr(FaultInvalidOutput, "label %d of example %d outside [0, %d)", y, i/max(s.LabelSize(), 1), limit)
		}
	}
	for _, ix := range b.Indices {
		if ix < 0 || int(ix) >= it.splitSize {
			return frameErr(FaultInvalidOutput, "example index %d outside split %q of %d", ix, it.opts.Split, it.splitSize)
		}
	}
	return nil
}

func toInt64s(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}
