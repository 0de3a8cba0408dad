// Package protocol is what prism and its plugins agree on, defined once: the
// go-plugin handshake (magic cookie and protocol version), the plugin kinds,
// the go-plugin glue that registers gRPC services, and the tensor framing
// (headers, then raw little-endian bytes in chunks) over the generated
// messages of plugins/proto/prismpb.
//
// The host (plugins/host) and the SDK (plugins/sdk) both build on this
// package; a plugin written in another language implements the services of
// plugins/proto/prism_plugins.proto behind the same handshake.
package protocol

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/prism-lora/prism/plugins/proto/prismpb"
)

// Version is the plugin protocol version. It changes whenever the messages
// or their meaning change incompatibly; host and plugin must agree on it.
const Version = 1

// Handshake is go-plugin's handshake for prism plugins. The magic cookie is
// not a secret: it only tells a plugin binary that prism started it (run by
// hand, a plugin says so and exits).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  Version,
	MagicCookieKey:   "PRISM_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "9c1f6a2e-prism-lora-plugin-4b7d0e53",
}

// Kind is what a plugin provides.
type Kind string

// The plugin kinds. A plugin binary serves exactly one kind, named by the
// prefix of its file name: prism-method-NAME or prism-dataset-NAME.
const (
	KindMethod  Kind = "method"
	KindDataset Kind = "dataset"
)

// Kinds lists every plugin kind.
var Kinds = []Kind{KindMethod, KindDataset}

// FilePrefix is the prefix of the file name of a plugin binary of kind k.
func (k Kind) FilePrefix() string { return "prism-" + string(k) + "-" }

// MethodPlugin is go-plugin's glue for the Method service. Impl is set on
// the plugin side; the host side gets a prismpb.MethodClient.
type MethodPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl prismpb.MethodServer
}

// GRPCServer registers the Method service.
func (p *MethodPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	prismpb.RegisterMethodServer(s, p.Impl)
	return nil
}

// GRPCClient returns a prismpb.MethodClient.
func (p *MethodPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return prismpb.NewMethodClient(c), nil
}

// DatasetPlugin is go-plugin's glue for the Dataset service. Impl is set
// on the plugin side; the host side gets a prismpb.DatasetClient.
type DatasetPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl prismpb.DatasetServer
}

// GRPCServer registers the Dataset service.
func (p *DatasetPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	prismpb.RegisterDatasetServer(s, p.Impl)
	return nil
}

// GRPCClient returns a prismpb.DatasetClient.
func (p *DatasetPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return prismpb.NewDatasetClient(c), nil
}

// PluginSet is the go-plugin plugin set of a host: both kinds, by name.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{
		string(KindMethod):  &MethodPlugin{},
		string(KindDataset): &DatasetPlugin{},
	}
}

// ServeConfig is the go-plugin serve configuration for a plugin of kind k
// served by srv (a prismpb.MethodServer or prismpb.DatasetServer), with the
// given handshake (normally Handshake). It lifts gRPC's 4 MiB message limit
// to MaxMessageBytes: chunks of up to MaxChunkBytes fit with room to spare,
// and a bigger (garbage) message is refused before it is read.
func ServeConfig(handshake plugin.HandshakeConfig, k Kind, srv interface{}) *plugin.ServeConfig {
	var p plugin.Plugin
	switch k {
	case KindMethod:
		p = &MethodPlugin{Impl: srv.(prismpb.MethodServer)}
	case KindDataset:
		p = &DatasetPlugin{Impl: srv.(prismpb.DatasetServer)}
	}
	return &plugin.ServeConfig{
		HandshakeConfig: handshake,
		// Only warnings and errors reach the host (which keeps the tail of a
		// plugin's stderr for its error messages).
		Logger:  hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr, JSONFormat: true}),
		Plugins: plugin.PluginSet{string(k): p},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
				grpc.InitialWindowSize(WindowBytes), grpc.InitialConnWindowSize(WindowBytes),
				grpc.WriteBufferSize(BufferBytes), grpc.ReadBufferSize(BufferBytes))
			return grpc.NewServer(opts...)
		},
	}
}

// Transport sizes for bulk tensor traffic: HTTP/2 flow-control windows
// large enough that a sender of multi-MiB chunks rarely waits for window
// updates, and socket buffers of a chunk's size.
const (
	WindowBytes = 64 << 20
	BufferBytes = 1 << 20
	// MaxMessageBytes bounds one gRPC message either way.
	MaxMessageBytes = MaxChunkBytes + 1<<20
)

// DialOptions are the host's gRPC options matching ServeConfig's.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(WindowBytes), grpc.WithInitialConnWindowSize(WindowBytes),
		grpc.WithWriteBufferSize(BufferBytes), grpc.WithReadBufferSize(BufferBytes),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	}
}
