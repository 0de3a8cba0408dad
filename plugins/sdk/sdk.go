// Package sdk is what a prism plugin author imports. A method plugin's main
// is one line:
//
//	func main() { sdk.ServeMethod(myMethod{}) }
//
// where myMethod implements sdk.Method (the same interface prism's built-in
// methods implement, core/method.Method). A dataset plugin's main calls
// sdk.ServeDataset with an sdk.Dataset. Build the binary as
// prism-method-NAME (or prism-dataset-NAME), put it in a directory on
// PRISM_PLUGIN_PATH, pin it with `prism plugins pin`, and check it with the
// conformance suite plugins/plugintest.
//
// The SDK depends only on the protocol (plugins/protocol, plugins/proto) and
// plain types; it never imports prism's training code or GoMLX.
package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/hyperparam"
	"github.com/prism-lora/prism/plugins/proto/prismpb"
	"github.com/prism-lora/prism/plugins/protocol"
)

// The method types, so that a plugin imports this package only.
type (
	// Method initialises low-rank adapters (see core/method.Method).
	Method = method.Method
	// Metadata describes a method.
	Metadata = method.Metadata
	// Request asks for one layer's adapter.
	Request = method.Request
	// Result is one layer's adapter: W ≈ Base + Scale·B·A.
	Result = method.Result
	// Matrix is a dense row-major float32 or float64 matrix.
	Matrix = method.Matrix
	// SVD is a thin SVD W ≈ U·diag(S)·Vᵀ.
	SVD = method.SVD
	// HyperParam describes one hyperparameter.
	HyperParam = method.HyperParam
	// HyperType is a hyperparameter's type.
	HyperType = method.HyperType
	// Value is one hyperparameter value.
	Value = method.Value
	// DType is a matrix element type.
	DType = method.DType
)

// The matrix element types and hyperparameter types.
const (
	Float32 = method.Float32
	Float64 = method.Float64
	Int     = method.Int
	Float   = method.Float
	Bool    = method.Bool
	String  = method.String
)

// ServeMethod serves m as a prism method plugin until the host disconnects,
// then exits the process. Run directly (not by prism), it explains that it
// is a plugin and exits with status 1.
func ServeMethod(m Method) {
	plugin.Serve(protocol.ServeConfig(protocol.Handshake, protocol.KindMethod, MethodServer(m)))
}

// MethodServer adapts m to the gRPC Method service (for serving it with a
// custom go-plugin configuration, or in-process in tests).
func MethodServer(m Method) prismpb.MethodServer {
	return &methodServer{m: m, md: m.Metadata()}
}

type methodServer struct {
	prismpb.UnimplementedMethodServer
	m  Method
	md method.Metadata
}

func (s *methodServer) Metadata(context.Context, *prismpb.Empty) (*prismpb.MethodMetadata, error) {
	if err := hyperparam.CheckMetadata(s.md); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return protocol.MethodMetadataToPB(s.md), nil
}

func (s *methodServer) Init(stream prismpb.Method_InitServer) error {
	req, err := receiveRequest(stream)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if req.Hyper, err = hyperparam.Resolve(s.md.Hyperparameters, req.Hyper); err != nil {
		return status.Errorf(codes.InvalidArgument, "layer %q: %v", req.Layer, err)
	}
	res, err := callInit(stream.Context(), s.m, req)
	if err != nil {
		return status.Errorf(codes.Unknown, "layer %q: %v", req.Layer, err)
	}
	h, ts, err := protocol.ResultHeaderToPB(res)
	if err != nil {
		return status.Errorf(codes.Internal, "layer %q: result: %v", req.Layer, err)
	}
	if err := stream.Send(&prismpb.InitResponse{Frame: &prismpb.InitResponse_Header{Header: h}}); err != nil {
		return err
	}
	return protocol.SendTensors(ts, 0, func(c *prismpb.Chunk) error {
		return stream.Send(&prismpb.InitResponse{Frame: &prismpb.InitResponse_Chunk{Chunk: c}})
	})
}

// callInit runs m.Init, turning a panic into an error that names it.
func callInit(ctx context.Context, m Method, req Request) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return m.Init(ctx, req)
}

// receiveRequest reads the header frame, then chunks until the tensors are
// complete and the host has closed its side.
func receiveRequest(stream prismpb.Method_InitServer) (Request, error) {
	first, err := stream.Recv()
	if err != nil {
		return Request{}, fmt.Errorf("reading the Init header: %w", err)
	}
	h := first.GetHeader()
	if h == nil {
		return Request{}, errors.New("the first Init frame is not a header")
	}
	recv, err := protocol.NewReceiver(h.GetTensors())
	if err != nil {
		return Request{}, fmt.Errorf("layer %q: %w", h.GetLayer(), err)
	}
	for {
		f, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Request{}, fmt.Errorf("layer %q: receiving tensors: %w", h.GetLayer(), err)
		}
		c := f.GetChunk()
		if c == nil {
			return Request{}, fmt.Errorf("layer %q: a second header frame", h.GetLayer())
		}
		if err := recv.Add(c); err != nil {
			return Request{}, fmt.Errorf("layer %q: %w", h.GetLayer(), err)
		}
	}
	ts, err := recv.Tensors()
	if err != nil {
		return Request{}, fmt.Errorf("layer %q: %w", h.GetLayer(), err)
	}
	return protocol.RequestFromPB(h, ts)
}
