package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/hyperparam"
	"github.com/prism-lora/prism/core/method/verify"
	"github.com/prism-lora/prism/plugins/proto/prismpb"
	"github.com/prism-lora/prism/plugins/protocol"
)

// MethodPlugin is a method plugin used as a core/method.Method. Every Init
// answer is verified (shapes, dtypes, finiteness, and the identity
// W = Base + scale·B·A unless the plugin declares it changes the function)
// before it is returned.
type MethodPlugin struct {
	host *Host
	proc *process
	md   method.Metadata
}

var _ method.Method = (*MethodPlugin)(nil)

// Method starts the named method plugin (or reuses its running process),
// reads and checks its metadata, and returns it.
func (h *Host) Method(ctx context.Context, name string) (*MethodPlugin, error) {
	in, err := h.Find(protocol.KindMethod, name)
	if err != nil {
		return nil, err
	}
	mp := &MethodPlugin{host: h, proc: h.process(in)}
	if mp.md, err = mp.fetchMetadata(ctx); err != nil {
		return nil, err
	}
	return mp, nil
}

// Installed is where the plugin was found and its checksum status.
func (m *MethodPlugin) Installed() Installed { return m.proc.inst }

// Metadata is the plugin's self-description, read when it was opened.
func (m *MethodPlugin) Metadata() method.Metadata { return m.md }

// Close stops the plugin's process (shared by every MethodPlugin of the
// same host and name).
func (m *MethodPlugin) Close() error {
	m.proc.close()
	return nil
}

func (m *MethodPlugin) client() (prismpb.MethodClient, error) {
	raw, err := m.proc.get()
	if err != nil {
		return nil, err
	}
	c, ok := raw.(prismpb.MethodClient)
	if !ok {
		return nil, m.proc.fail("start", FaultHandshake, fmt.Errorf("dispensed %T, not a method client", raw))
	}
	return c, nil
}

func (m *MethodPlugin) fetchMetadata(ctx context.Context) (method.Metadata, error) {
	c, err := m.client()
	if err != nil {
		return method.Metadata{}, err
	}
	callCtx, cancel := m.host.withDeadline(ctx)
	defer cancel()
	p, err := c.Metadata(callCtx, &prismpb.Empty{})
	if err != nil {
		return method.Metadata{}, m.proc.callError(ctx, callCtx, "Metadata", m.host.opts.CallTimeout, err)
	}
	md, err := protocol.MethodMetadataFromPB(p)
	if err == nil {
		err = hyperparam.CheckMetadata(md)
	}
	if err == nil && md.Name != m.proc.inst.Name {
		err = fmt.Errorf("it calls itself %q but is installed as %q", md.Name, m.proc.inst.Name)
	}
	if err != nil {
		return method.Metadata{}, m.proc.fail("Metadata", FaultInvalidOutput, err)
	}
	return md, nil
}

// Init sends the layer's weight (and its SVD when the method needs it:
// req.SVD, or one computed with Options.ComputeSVD) to the plugin, and
// returns the verified adapter. Hyperparameters are checked against the
// metadata and completed with defaults first.
func (m *MethodPlugin) Init(ctx context.Context, req method.Request) (method.Result, error) {
	hyper, err := hyperparam.Resolve(m.md.Hyperparameters, req.Hyper)
	if err != nil {
		return method.Result{}, fmt.Errorf("method plugin %q, layer %q: %w", m.md.Name, req.Layer, err)
	}
	req.Hyper = hyper
	if err := verify.Matrix("weight", req.Weight, req.Weight.DType, req.Weight.Rows, req.Weight.Cols); err != nil {
		return method.Result{}, fmt.Errorf("method plugin %q, layer %q: %w", m.md.Name, req.Layer, err)
	}
	if req.Rank < 1 || req.Rank > min(req.Weight.Rows, req.Weight.Cols) {
		return method.Result{}, fmt.Errorf("method plugin %q, layer %q: rank %d outside [1, %d] for a %d×%d weight",
			m.md.Name, req.Layer, req.Rank, min(req.Weight.Rows, req.Weight.Cols), req.Weight.Rows, req.Weight.Cols)
	}
	if m.md.NeedsSVD && req.SVD == nil {
		if req.SVD, err = m.host.opts.ComputeSVD(req.Weight); err != nil {
			return method.Result{}, fmt.Errorf("method plugin %q, layer %q: computing the SVD it needs: %w", m.md.Name, req.Layer, err)
		}
	}
	if !m.md.NeedsSVD {
		req.SVD = nil // not wanted: do not ship it
	}
	op := fmt.Sprintf("Init layer %q", req.Layer)
	header, tensors, err := protocol.InitHeaderToPB(req, m.md)
	if err != nil {
		return method.Result{}, fmt.Errorf("method plugin %q, layer %q: %w", m.md.Name, req.Layer, err)
	}
	c, err := m.client()
	if err != nil {
		return method.Result{}, err
	}
	callCtx, cancel := m.host.withDeadline(ctx)
	defer cancel()
	res, err := m.exchange(callCtx, c, header, tensors, req)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) && pe.Op == "" { // the plugin's frames were wrong
			return method.Result{}, m.proc.fail(op, pe.Fault, pe.Err)
		}
		return method.Result{}, m.proc.callError(ctx, callCtx, op, m.host.opts.CallTimeout, err)
	}
	if err := verify.Result(req, res); err != nil {
		return method.Result{}, m.proc.fail(op, FaultInvalidOutput, err)
	}
	return res, nil
}

// exchange runs one Init stream. Errors that the plugin's frames cause are
// *Error with an empty Op (FaultProtocol, FaultInvalidOutput); transport and
// status errors are returned as they are, for callError to classify.
func (m *MethodPlugin) exchange(ctx context.Context, c prismpb.MethodClient, header *prismpb.InitHeader, tensors []protocol.Tensor, req method.Request) (method.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream on every return
	stream, err := c.Init(ctx)
	if err != nil {
		return method.Result{}, err
	}
	sendErr := stream.Send(&prismpb.InitRequest{Frame: &prismpb.InitRequest_Header{Header: header}})
	if sendErr == nil {
		sendErr = protocol.SendTensors(tensors, m.host.opts.ChunkBytes, func(ch *prismpb.Chunk) error {
			return stream.Send(&prismpb.InitRequest{Frame: &prismpb.InitRequest_Chunk{Chunk: ch}})
		})
	}
	if sendErr == nil {
		sendErr = stream.CloseSend()
	}
	if sendErr != nil && sendErr != io.EOF {
		return method.Result{}, sendErr
	}
	// On io.EOF the plugin ended the stream early; Recv returns its status.
	first, err := stream.Recv()
	if err != nil {
		if err == io.EOF {
			return method.Result{}, &Error{Fault: FaultProtocol, Err: errors.New("the stream ended without a result")}
		}
		return method.Result{}, err
	}
	rh := first.GetHeader()
	if rh == nil {
		return method.Result{}, &Error{Fault: FaultProtocol, Err: errors.New("the first Init answer frame is not a header")}
	}
	if err := checkResultHeaders(rh.GetTensors(), req); err != nil {
		return method.Result{}, &Error{Fault: FaultInvalidOutput, Err: err}
	}
	recv, err := protocol.NewReceiver(rh.GetTensors())
	if err != nil {
		return method.Result{}, &Error{Fault: FaultProtocol, Err: err}
	}
	for !recv.Complete() {
		f, err := stream.Recv()
		if err == io.EOF {
			_, err = recv.Tensors()
			return method.Result{}, &Error{Fault: FaultProtocol, Err: fmt.Errorf("the stream ended early: %v", err)}
		}
		if err != nil {
			return method.Result{}, err
		}
		ch := f.GetChunk()
		if ch == nil {
			return method.Result{}, &Error{Fault: FaultProtocol, Err: errors.New("a second header frame before the tensors were complete")}
		}
		if err := recv.Add(ch); err != nil {
			return method.Result{}, &Error{Fault: FaultProtocol, Err: err}
		}
	}
	if f, err := stream.Recv(); err == nil {
		return method.Result{}, &Error{Fault: FaultProtocol, Err: fmt.Errorf("an extra frame after the result (%T)", f.GetFrame())}
	} else if err != io.EOF {
		return method.Result{}, err
	}
	ts, err := recv.Tensors()
	if err != nil {
		return method.Result{}, &Error{Fault: FaultProtocol, Err: err}
	}
	res, err := protocol.ResultFromPB(rh, ts)
	if err != nil {
		return method.Result{}, &Error{Fault: FaultProtocol, Err: err}
	}
	return res, nil
}

// checkResultHeaders checks the announced result tensors before anything is
// allocated: exactly a (r×n), b (m×r), base (m×n), in the weight's dtype.
func checkResultHeaders(hs []*prismpb.TensorHeader, req method.Request) error {
	d, err := protocol.DTypeToPB(req.Weight.DType)
	if err != nil {
		return err
	}
	m, n, r := int64(req.Weight.Rows), int64(req.Weight.Cols), int64(req.Rank)
	want := []struct {
		name  string
		shape []int64
		desc  string
	}{{protocol.TensorA, []int64{r, n}, "r×n"}, {protocol.TensorB, []int64{m, r}, "m×r"}, {protocol.TensorBase, []int64{m, n}, "m×n"}}
	if len(hs) != len(want) {
		return fmt.Errorf("announced %d result tensors, want %d (a, b, base)", len(hs), len(want))
	}
	for i, w := range want {
		h := hs[i]
		if h.GetName() != w.name {
			return fmt.Errorf("result tensor %d is %q, want %q", i, h.GetName(), w.name)
		}
		if h.GetDtype() != d {
			return fmt.Errorf("%s has dtype %v, want %v (the weight's)", w.name, h.GetDtype(), d)
		}
		if !slices.Equal(h.GetShape(), w.shape) {
			return fmt.Errorf("%s has shape %v, want %v (%s)", w.name, h.GetShape(), w.shape, w.desc)
		}
	}
	return nil
}
