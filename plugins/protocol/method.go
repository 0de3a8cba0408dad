package protocol

import (
	"fmt"
	"math"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/plugins/proto/prismpb"
)

// Names of the tensors of an Init call.
const (
	TensorWeight = "weight" // m×n, request
	TensorSVDU   = "svd.u"  // m×q, request, when the method needs the SVD
	TensorSVDS   = "svd.s"  // q, float64, request
	TensorSVDV   = "svd.v"  // n×q, request
	TensorA      = "a"      // r×n, result
	TensorB      = "b"      // m×r, result
	TensorBase   = "base"   // m×n, result
)

// DTypeToPB maps a matrix dtype to the wire dtype.
func DTypeToPB(d method.DType) (prismpb.DType, error) {
	switch d {
	case method.Float32:
		return prismpb.DType_FLOAT32, nil
	case method.Float64:
		return prismpb.DType_FLOAT64, nil
	}
	return prismpb.DType_DTYPE_UNSPECIFIED, fmt.Errorf("unknown matrix dtype %q (want float32 or float64)", d)
}

// DTypeFromPB maps a wire dtype to a matrix dtype (float32 or float64 only).
func DTypeFromPB(d prismpb.DType) (method.DType, error) {
	switch d {
	case prismpb.DType_FLOAT32:
		return method.Float32, nil
	case prismpb.DType_FLOAT64:
		return method.Float64, nil
	}
	return "", fmt.Errorf("dtype %v is not a matrix dtype (want FLOAT32 or FLOAT64)", d)
}

// MatrixTensor announces matrix m under name, sharing m's memory. It checks
// that m holds Rows·Cols elements of its dtype.
func MatrixTensor(name string, m method.Matrix) (Tensor, error) {
	d, err := DTypeToPB(m.DType)
	if err != nil {
		return Tensor{}, fmt.Errorf("matrix %q: %w", name, err)
	}
	if m.Rows < 0 || m.Cols < 0 {
		return Tensor{}, fmt.Errorf("matrix %q: negative shape %d×%d", name, m.Rows, m.Cols)
	}
	t := Tensor{Header: &prismpb.TensorHeader{Name: name, Dtype: d, Shape: []int64{int64(m.Rows), int64(m.Cols)}}}
	n, have := m.Rows*m.Cols, 0
	if d == prismpb.DType_FLOAT32 {
		t.F32, have = m.F32, len(m.F32)
	} else {
		t.F64, have = m.F64, len(m.F64)
	}
	if have != n {
		return Tensor{}, fmt.Errorf("matrix %q: %s %d×%d needs %d elements, holds %d", name, m.DType, m.Rows, m.Cols, n, have)
	}
	return t, nil
}

// TensorMatrix views a received 2-D float tensor as a matrix (no copy).
func TensorMatrix(t Tensor) (method.Matrix, error) {
	h := t.Header
	d, err := DTypeFromPB(h.GetDtype())
	if err != nil {
		return method.Matrix{}, fmt.Errorf("tensor %q: %w", h.GetName(), err)
	}
	if len(h.GetShape()) != 2 {
		return method.Matrix{}, fmt.Errorf("tensor %q: shape %v is not 2-D", h.GetName(), h.GetShape())
	}
	return method.Matrix{DType: d, Rows: int(h.Shape[0]), Cols: int(h.Shape[1]), F32: t.F32, F64: t.F64}, nil
}

// HyperTypeToPB maps a hyperparameter type to the wire enum.
func HyperTypeToPB(t method.HyperType) prismpb.HyperType {
	switch t {
	case method.Int:
		return prismpb.HyperType_INT
	case method.Float:
		return prismpb.HyperType_FLOAT
	case method.Bool:
		return prismpb.HyperType_BOOL
	case method.String:
		return prismpb.HyperType_STRING
	}
	return prismpb.HyperType_HYPER_TYPE_UNSPECIFIED
}

// HyperTypeFromPB maps the wire enum to a hyperparameter type.
func HyperTypeFromPB(t prismpb.HyperType) (method.HyperType, error) {
	switch t {
	case prismpb.HyperType_INT:
		return method.Int, nil
	case prismpb.HyperType_FLOAT:
		return method.Float, nil
	case prismpb.HyperType_BOOL:
		return method.Bool, nil
	case prismpb.HyperType_STRING:
		return method.String, nil
	}
	return "", fmt.Errorf("unknown hyperparameter type %v", t)
}

// HyperValueToPB encodes v as a value of type t.
func HyperValueToPB(t method.HyperType, v method.Value) *prismpb.HyperValue {
	switch t {
	case method.Int:
		return &prismpb.HyperValue{Value: &prismpb.HyperValue_Int{Int: v.Int}}
	case method.Float:
		return &prismpb.HyperValue{Value: &prismpb.HyperValue_Float{Float: v.Float}}
	case method.Bool:
		return &prismpb.HyperValue{Value: &prismpb.HyperValue_Bool{Bool: v.Bool}}
	case method.String:
		return &prismpb.HyperValue{Value: &prismpb.HyperValue_String_{String_: v.String}}
	}
	return &prismpb.HyperValue{}
}

// HyperValueFromPB decodes a value; its type is the oneof field that is set.
func HyperValueFromPB(p *prismpb.HyperValue) (method.HyperType, method.Value, error) {
	switch x := p.GetValue().(type) {
	case *prismpb.HyperValue_Int:
		return method.Int, method.Value{Int: x.Int}, nil
	case *prismpb.HyperValue_Float:
		return method.Float, method.Value{Float: x.Float}, nil
	case *prismpb.HyperValue_Bool:
		return method.Bool, method.Value{Bool: x.Bool}, nil
	case *prismpb.HyperValue_String_:
		return method.String, method.Value{String: x.String_}, nil
	}
	return "", method.Value{}, fmt.Errorf("hyperparameter value has no value set")
}

// MethodMetadataToPB encodes metadata.
func MethodMetadataToPB(md method.Metadata) *prismpb.MethodMetadata {
	p := &prismpb.MethodMetadata{Name: md.Name, Version: md.Version, Description: md.Description, NeedsSvd: md.NeedsSVD}
	for _, h := range md.Hyperparameters {
		hp := &prismpb.HyperParam{
			Name: h.Name, Type: HyperTypeToPB(h.Type), Description: h.Description,
			Default: HyperValueToPB(h.Type, h.Default), Min: h.Min, Max: h.Max, Choices: h.Choices,
		}
		p.Hyperparameters = append(p.Hyperparameters, hp)
	}
	return p
}

// MethodMetadataFromPB decodes metadata, checking each hyperparameter's
// type and that its default has that type.
func MethodMetadataFromPB(p *prismpb.MethodMetadata) (method.Metadata, error) {
	md := method.Metadata{Name: p.GetName(), Version: p.GetVersion(), Description: p.GetDescription(), NeedsSVD: p.GetNeedsSvd()}
	for _, hp := range p.GetHyperparameters() {
		t, err := HyperTypeFromPB(hp.GetType())
		if err != nil {
			return method.Metadata{}, fmt.Errorf("hyperparameter %q: %w", hp.GetName(), err)
		}
		dt, def, err := HyperValueFromPB(hp.GetDefault())
		if err != nil {
			return method.Metadata{}, fmt.Errorf("hyperparameter %q default: %w", hp.GetName(), err)
		}
		if dt != t {
			return method.Metadata{}, fmt.Errorf("hyperparameter %q: default is %s, parameter is %s", hp.GetName(), dt, t)
		}
		md.Hyperparameters = append(md.Hyperparameters, method.HyperParam{
			Name: hp.GetName(), Type: t, Description: hp.GetDescription(), Default: def,
			Min: hp.Min, Max: hp.Max, Choices: hp.GetChoices(),
		})
	}
	return md, nil
}

// InitHeaderToPB encodes a request's scalars, hyperparameters (typed by md)
// and the headers of its tensors; tensors are returned in the header's order.
func InitHeaderToPB(req method.Request, md method.Metadata) (*prismpb.InitHeader, []Tensor, error) {
	h := &prismpb.InitHeader{
		Layer: req.Layer, Rank: int64(req.Rank), Alpha: req.Alpha, Rslora: req.RSLoRA,
		Scale: req.Scale, Seed: req.Seed, Hyper: map[string]*prismpb.HyperValue{},
	}
	types := map[string]method.HyperType{}
	for _, p := range md.Hyperparameters {
		types[p.Name] = p.Type
	}
	for name, v := range req.Hyper {
		t, ok := types[name]
		if !ok {
			return nil, nil, fmt.Errorf("hyperparameter %q is not one of method %q's", name, md.Name)
		}
		h.Hyper[name] = HyperValueToPB(t, v)
	}
	w, err := MatrixTensor(TensorWeight, req.Weight)
	if err != nil {
		return nil, nil, err
	}
	ts := []Tensor{w}
	if req.SVD != nil {
		u, err := MatrixTensor(TensorSVDU, req.SVD.U)
		if err != nil {
			return nil, nil, err
		}
		v, err := MatrixTensor(TensorSVDV, req.SVD.V)
		if err != nil {
			return nil, nil, err
		}
		s := Tensor{Header: &prismpb.TensorHeader{Name: TensorSVDS, Dtype: prismpb.DType_FLOAT64, Shape: []int64{int64(len(req.SVD.S))}}, F64: req.SVD.S}
		ts = append(ts, u, s, v)
	}
	for _, t := range ts {
		h.Tensors = append(h.Tensors, t.Header)
	}
	return h, ts, nil
}

// RequestFromPB rebuilds a request from its header and received tensors.
func RequestFromPB(h *prismpb.InitHeader, ts []Tensor) (method.Request, error) {
	if h.GetRank() < 0 || h.GetRank() > math.MaxInt32 {
		return method.Request{}, fmt.Errorf("layer %q: rank %d out of range", h.GetLayer(), h.GetRank())
	}
	req := method.Request{
		Layer: h.GetLayer(), Rank: int(h.GetRank()), Alpha: h.GetAlpha(), RSLoRA: h.GetRslora(),
		Scale: h.GetScale(), Seed: h.GetSeed(), Hyper: map[string]method.Value{},
	}
	for name, pv := range h.GetHyper() {
		_, v, err := HyperValueFromPB(pv)
		if err != nil {
			return method.Request{}, fmt.Errorf("hyperparameter %q: %w", name, err)
		}
		req.Hyper[name] = v
	}
	var svd method.SVD
	var haveU, haveS, haveV bool
	for _, t := range ts {
		var err error
		switch t.Header.GetName() {
		case TensorWeight:
			req.Weight, err = TensorMatrix(t)
		case TensorSVDU:
			svd.U, err = TensorMatrix(t)
			haveU = true
		case TensorSVDV:
			svd.V, err = TensorMatrix(t)
			haveV = true
		case TensorSVDS:
			if t.Header.GetDtype() != prismpb.DType_FLOAT64 || len(t.Header.GetShape()) != 1 {
				err = fmt.Errorf("tensor %q must be a float64 vector, is %v %v", TensorSVDS, t.Header.GetDtype(), t.Header.GetShape())
			}
			svd.S = t.F64
			haveS = true
		default:
			err = fmt.Errorf("unexpected tensor %q in an Init request", t.Header.GetName())
		}
		if err != nil {
			return method.Request{}, fmt.Errorf("layer %q: %w", h.GetLayer(), err)
		}
	}
	if req.Weight.DType == "" {
		return method.Request{}, fmt.Errorf("layer %q: Init request without a %q tensor", h.GetLayer(), TensorWeight)
	}
	switch {
	case haveU && haveS && haveV:
		req.SVD = &svd
	case haveU || haveS || haveV:
		return method.Request{}, fmt.Errorf("layer %q: Init request with part of an SVD (need %s, %s and %s)", h.GetLayer(), TensorSVDU, TensorSVDS, TensorSVDV)
	}
	return req, nil
}

// ResultHeaderToPB encodes a result's scalars and the headers of A, B, Base.
func ResultHeaderToPB(res method.Result) (*prismpb.InitResultHeader, []Tensor, error) {
	h := &prismpb.InitResultHeader{ChangesFunction: res.ChangesFunction, Note: res.Note}
	for _, c := range res.Components {
		h.Components = append(h.Components, int64(c))
	}
	var ts []Tensor
	for _, nm := range []struct {
		name string
		m    method.Matrix
	}{{TensorA, res.A}, {TensorB, res.B}, {TensorBase, res.Base}} {
		t, err := MatrixTensor(nm.name, nm.m)
		if err != nil {
			return nil, nil, err
		}
		ts = append(ts, t)
		h.Tensors = append(h.Tensors, t.Header)
	}
	return h, ts, nil
}

// ResultFromPB rebuilds a result from its header and received tensors.
func ResultFromPB(h *prismpb.InitResultHeader, ts []Tensor) (method.Result, error) {
	res := method.Result{ChangesFunction: h.GetChangesFunction(), Note: h.GetNote()}
	for _, c := range h.GetComponents() {
		res.Components = append(res.Components, int(c))
	}
	var have [3]bool
	for _, t := range ts {
		m, err := TensorMatrix(t)
		if err != nil {
			return method.Result{}, err
		}
		switch t.Header.GetName() {
		case TensorA:
			res.A, have[0] = m, true
		case TensorB:
			res.B, have[1] = m, true
		case TensorBase:
			res.Base, have[2] = m, true
		default:
			return method.Result{}, fmt.Errorf("unexpected tensor %q in an Init result", t.Header.GetName())
		}
	}
	if !have[0] || !have[1] || !have[2] {
		return method.Result{}, fmt.Errorf("Init result lacks one of the tensors %q, %q, %q", TensorA, TensorB, TensorBase)
	}
	return res, nil
}
