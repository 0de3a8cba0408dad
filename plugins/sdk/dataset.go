package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/plugins/proto/prismpb"
	"github.com/prism-lora/prism/plugins/protocol"
)

// The dataset types, so that a plugin imports this package only.
type (
	// Dataset is a source of examples with a fixed Spec (see datasets.Dataset).
	Dataset = datasets.Dataset
	// DatasetSpec describes a dataset.
	DatasetSpec = datasets.Spec
	// Batches iterates over the batches of one split.
	Batches = datasets.Batches
	// BatchOptions choose the split, order, shard and batch size.
	BatchOptions = datasets.BatchOptions
	// Batch is a run of consecutive examples.
	Batch = datasets.Batch
)

// ServeDataset serves d as a prism dataset plugin until the host
// disconnects, then exits the process. Run directly (not by prism), it
// explains that it is a plugin and exits with status 1.
func ServeDataset(d Dataset) {
	plugin.Serve(protocol.ServeConfig(protocol.Handshake, protocol.KindDataset, DatasetServer(d)))
}

// DatasetServer adapts d to the gRPC Dataset service.
func DatasetServer(d Dataset) prismpb.DatasetServer { return &datasetServer{d: d} }

type datasetServer struct {
	prismpb.UnimplementedDatasetServer
	d Dataset
}

func (s *datasetServer) Spec(context.Context, *prismpb.Empty) (*prismpb.DatasetSpec, error) {
	spec := s.d.Spec()
	if err := spec.Validate(); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	p, err := protocol.SpecToPB(spec)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return p, nil
}

// Batches streams every batch of the pass: a header, then its chunks.
func (s *datasetServer) Batches(req *prismpb.BatchesRequest, stream prismpb.Dataset_BatchesServer) error {
	o, err := protocol.OptionsFromPB(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	spec := s.d.Spec()
	if err := o.Check(spec); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	it, err := s.d.Batches(stream.Context(), o)
	if err != nil {
		return status.Errorf(codes.Unknown, "dataset %q: opening split %q: %v", spec.Name, o.Split, err)
	}
	defer it.Close()
	var b Batch
	for i := 0; ; i++ {
		err := it.Next(&b)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Unknown, "dataset %q: split %q batch %d: %v", spec.Name, o.Split, i, err)
		}
		ts := protocol.BatchTensors(spec, &b)
		h := &prismpb.BatchHeader{Size: int64(b.Size)}
		for _, t := range ts {
			h.Tensors = append(h.Tensors, t.Header)
		}
		if err := stream.Send(&prismpb.BatchFrame{Frame: &prismpb.BatchFrame_Header{Header: h}}); err != nil {
			return err
		}
		err = protocol.SendTensors(ts, 0, func(c *prismpb.Chunk) error {
			return stream.Send(&prismpb.BatchFrame{Frame: &prismpb.BatchFrame_Chunk{Chunk: c}})
		})
		if err != nil {
			return fmt.Errorf("dataset %q: split %q batch %d: %w", spec.Name, o.Split, i, err)
		}
	}
}
