// Command faulty is a method plugin that misbehaves on purpose, for the
// host's fault tests. The fault is chosen by the binary's file name,
// prism-method-FAULT, and the plugin calls itself FAULT:
//
//	good      a correct PiSSA window (the control)
//	crash     dies mid-call (a panic in another goroutine) after reading the request
//	hang      never answers Init
//	shape     returns A with one row too many
//	nan       returns A with a NaN
//	identity  returns Base = W (breaks the identity without declaring it)
//	garbage   sends a chunk that overflows its tensor
//	huge      sends a message larger than the protocol's limit
//	error     answers with an error of its own
//	version   speaks protocol version 99
//	stdout    writes garbage instead of the handshake, then waits
//	exit      exits with status 7 before the handshake
//
// Named prism-dataset-FAULT, it serves a synthetic dataset (split "train",
// 50 examples of shape [2, 3], 10 classes) that misbehaves on the second
// batch of a pass:
//
//	good      behaves
//	hang      never sends the second batch
//	crash     dies (a panic in another goroutine)
//	badlabel  sends label 10 of 10 classes
//	nan       sends a NaN input
//	short     ends the pass after one batch
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/prism-lora/prism/datasets"
	"github.com/prism-lora/prism/datasets/dense"
	"github.com/prism-lora/prism/plugins/proto/prismpb"
	"github.com/prism-lora/prism/plugins/protocol"
	"github.com/prism-lora/prism/plugins/sdk"
)

type faulty struct{ fault string }

func (f faulty) Metadata() sdk.Metadata {
	return sdk.Metadata{Name: f.fault, Version: "0.0.1", Description: "misbehaves: " + f.fault, NeedsSVD: true}
}

func window(r int) []int {
	idx := make([]int, r)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func (f faulty) Init(_ context.Context, req sdk.Request) (sdk.Result, error) {
	switch f.fault {
	case "crash":
		done := make(chan struct{})
		go func() { panic(fmt.Sprintf("faulty plugin crashing on layer %s", req.Layer)) }()
		<-done
	case "hang":
		select {}
	case "error":
		return sdk.Result{}, errors.New("this layer is not to my taste")
	}
	res, err := sdk.ComponentAdapter(req, window(req.Rank))
	if err != nil {
		return res, err
	}
	switch f.fault {
	case "shape":
		res.A.Rows++
		if res.A.DType == sdk.Float32 {
			res.A.F32 = append(res.A.F32, make([]float32, res.A.Cols)...)
		} else {
			res.A.F64 = append(res.A.F64, make([]float64, res.A.Cols)...)
		}
	case "nan":
		if res.A.DType == sdk.Float32 {
			res.A.F32[1] = float32(math.NaN())
		} else {
			res.A.F64[1] = math.NaN()
		}
	case "identity":
		res.Base = req.Weight
	}
	return res, nil
}

// garbageServer announces a correct result, then sends a chunk that
// overflows the first tensor.
type garbageServer struct {
	prismpb.UnimplementedMethodServer
	md    *prismpb.MethodMetadata
	fault string
}

func (g garbageServer) Metadata(context.Context, *prismpb.Empty) (*prismpb.MethodMetadata, error) {
	return g.md, nil
}

func (g garbageServer) Init(stream prismpb.Method_InitServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	w := h.GetTensors()[0]
	m, n, r := w.Shape[0], w.Shape[1], h.GetRank()
	hdr := &prismpb.InitResultHeader{Tensors: []*prismpb.TensorHeader{
		{Name: protocol.TensorA, Dtype: w.Dtype, Shape: []int64{r, n}},
		{Name: protocol.TensorB, Dtype: w.Dtype, Shape: []int64{m, r}},
		{Name: protocol.TensorBase, Dtype: w.Dtype, Shape: []int64{m, n}},
	}}
	if err := stream.Send(&prismpb.InitResponse{Frame: &prismpb.InitResponse_Header{Header: hdr}}); err != nil {
		return err
	}
	junk := []byte(strings.Repeat("garbage!", int(r*n)))
	if g.fault == "huge" {
		junk = make([]byte, protocol.MaxMessageBytes+1)
	}
	return stream.Send(&prismpb.InitResponse{Frame: &prismpb.InitResponse_Chunk{Chunk: &prismpb.Chunk{Tensor: 0, Data: junk}}})
}

// badDataset wraps a good dataset and spoils the second batch of each pass.
type badDataset struct {
	*dense.Dataset
	fault string
}

func (d badDataset) Spec() datasets.Spec {
	s := d.Dataset.Spec()
	s.Name = d.fault
	return s
}

func (d badDataset) Batches(ctx context.Context, o datasets.BatchOptions) (datasets.Batches, error) {
	it, err := d.Dataset.Batches(ctx, o)
	return &badBatches{Batches: it, fault: d.fault}, err
}

type badBatches struct {
	datasets.Batches
	fault string
	n     int
}

func (b *badBatches) Next(dst *datasets.Batch) error {
	b.n++
	if b.n == 2 {
		switch b.fault {
		case "hang":
			select {}
		case "crash":
			done := make(chan struct{})
			go func() { panic("faulty dataset crashing on batch 2") }()
			<-done
		case "short":
			return io.EOF
		}
	}
	err := b.Batches.Next(dst)
	if b.n == 2 && err == nil {
		switch b.fault {
		case "badlabel":
			dst.Labels[0] = 10
		case "nan":
			dst.Inputs[4] = float32(math.NaN())
		}
	}
	return err
}

func serveDataset(fault string) {
	const n = 50
	split := dense.Split{Name: "train", Inputs: make([]float32, n*6), Labels: make([]int32, n)}
	for i := range split.Inputs {
		split.Inputs[i] = float32(i%13) / 13
	}
	for i := range split.Labels {
		split.Labels[i] = int32(i % 10)
	}
	spec := datasets.Spec{Name: fault, Description: "synthetic, misbehaving: " + fault, Task: datasets.Classification,
		Splits: []datasets.Split{{Name: "train", Size: n}}, ExampleShape: []int{2, 3}, DType: datasets.Float32,
		Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, PadToken: -1}
	d, err := dense.New(spec, split)
	if err != nil {
		panic(err)
	}
	sdk.ServeDataset(badDataset{Dataset: d, fault: fault})
}

func main() {
	if fault, ok := strings.CutPrefix(filepath.Base(os.Args[0]), "prism-dataset-"); ok {
		serveDataset(fault)
		return
	}
	fault := strings.TrimPrefix(filepath.Base(os.Args[0]), "prism-method-")
	f := faulty{fault: fault}
	switch fault {
	case "garbage", "huge":
		srv := garbageServer{md: protocol.MethodMetadataToPB(f.Metadata()), fault: fault}
		plugin.Serve(protocol.ServeConfig(protocol.Handshake, protocol.KindMethod, srv))
	case "version":
		hs := protocol.Handshake
		hs.ProtocolVersion = 99
		plugin.Serve(protocol.ServeConfig(hs, protocol.KindMethod, sdk.MethodServer(f)))
	case "stdout":
		fmt.Println("hello from a plugin that forgot the handshake")
		time.Sleep(time.Hour)
	case "exit":
		fmt.Fprintln(os.Stderr, "faulty plugin: refusing to start")
		os.Exit(7)
	default:
		sdk.ServeMethod(f)
	}
}
