package train

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/safetensors"
)

// ModelScope is the context scope holding a network's variables; optimizer
// state lives outside it.
const ModelScope = "model"

// modelPrefix is the absolute scope of ModelScope, with a trailing separator.
const modelPrefix = mlctx.ScopeSeparator + ModelScope + mlctx.ScopeSeparator

// ParameterName maps a model variable's scope and name to its tensor name in
// a model file: the scope below /model with "/" turned into ".", then the
// variable name — "/model/blocks.0.attn.qkv" + "weight" →
// "blocks.0.attn.qkv.weight" (the PyTorch state-dict spelling). ok is false
// for variables outside /model.
func ParameterName(scope, name string) (string, bool) {
	scope += mlctx.ScopeSeparator
	if !strings.HasPrefix(scope, modelPrefix) {
		return "", false
	}
	rest := strings.Trim(strings.TrimPrefix(scope, modelPrefix), mlctx.ScopeSeparator)
	if rest == "" {
		return name, true
	}
	return strings.ReplaceAll(rest, mlctx.ScopeSeparator, ".") + "." + name, true
}

// splitParameterName inverts ParameterName: the variable name is the part
// after the last "." (prism's variable names contain no dots).
func splitParameterName(param string) (scope, name string) {
	i := strings.LastIndex(param, ".")
	if i < 0 {
		return modelPrefix[:len(modelPrefix)-1], param
	}
	return modelPrefix + param[:i], param[i+1:]
}

// tensorOf encodes a variable's value for a safetensors file.
func tensorOf(name string, v *mlctx.Variable) (safetensors.Tensor, error) {
	t, err := v.Value()
	if err != nil {
		return safetensors.Tensor{}, fmt.Errorf("variable %s: %w", v.ScopeAndName(), err)
	}
	dims := t.Shape().Dimensions
	switch t.DType() {
	case dtypes.Float32:
		return safetensors.FromFloats(name, dims, tensors.MustCopyFlatData[float32](t)), nil
	case dtypes.Float64:
		return safetensors.FromFloats(name, dims, tensors.MustCopyFlatData[float64](t)), nil
	case dtypes.Int64:
		vals := tensors.MustCopyFlatData[int64](t)
		raw := make([]byte, 8*len(vals))
		for i, x := range vals {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
		}
		return safetensors.FromRaw(name, safetensors.I64, dims, raw), nil
	case dtypes.Int32:
		vals := tensors.MustCopyFlatData[int32](t)
		raw := make([]byte, 4*len(vals))
		for i, x := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
		}
		return safetensors.FromRaw(name, safetensors.I32, dims, raw), nil
	}
	return safetensors.Tensor{}, fmt.Errorf("variable %s: dtype %s cannot be saved (want Float32, Float64, Int64 or Int32)", v.ScopeAndName(), t.DType())
}

// tensorFromFile reads a tensor of a safetensors file as a GoMLX tensor of
// the given dtype (which must be the stored one).
func tensorFromFile(r *safetensors.Reader, name string, want dtypes.DType) (*tensors.Tensor, error) {
	info, err := r.Info(name)
	if err != nil {
		return nil, err
	}
	dims := info.Shape
	stored := map[safetensors.DType]dtypes.DType{safetensors.F32: dtypes.Float32, safetensors.F64: dtypes.Float64,
		safetensors.I64: dtypes.Int64, safetensors.I32: dtypes.Int32}[info.DType]
	if want != dtypes.InvalidDType && stored != want {
		return nil, fmt.Errorf("safetensors file %s: tensor %q is %s, the variable is %s", r.Name(), name, info.DType, want)
	}
	switch stored {
	case dtypes.Float32:
		v, err := r.Float32s(name)
		if err != nil {
			return nil, err
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	case dtypes.Float64:
		v, err := r.Float64s(name)
		if err != nil {
			return nil, err
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	case dtypes.Int64, dtypes.Int32:
		raw, err := r.Raw(name)
		if err != nil {
			return nil, err
		}
		if stored == dtypes.Int64 {
			v := make([]int64, len(raw)/8)
			for i := range v {
				v[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
			return tensors.FromFlatDataAndDimensions(v, dims...), nil
		}
		v := make([]int32, len(raw)/4)
		for i := range v {
			v[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return tensors.FromFlatDataAndDimensions(v, dims...), nil
	}
	return nil, fmt.Errorf("safetensors file %s: tensor %q has dtype %s (want F32, F64, I64 or I32)", r.Name(), name, info.DType)
}

// sortedVariables returns ctx's variables ordered by scope and name.
func sortedVariables(ctx *mlctx.Context) []*mlctx.Variable {
	var vars []*mlctx.Variable
	for v := range ctx.IterVariables() {
		vars = append(vars, v)
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].ScopeAndName() < vars[j].ScopeAndName() })
	return vars
}

// SaveModel writes the variables under /model of ctx to path (atomically),
// named by ParameterName, with the given metadata.
func SaveModel(path string, ctx *mlctx.Context, metadata map[string]string) error {
	var ts []safetensors.Tensor
	for _, v := range sortedVariables(ctx) {
		name, ok := ParameterName(v.Scope(), v.Name())
		if !ok {
			continue
		}
		t, err := tensorOf(name, v)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return fmt.Errorf("saving model %s: the context has no variables under %s", path, modelPrefix)
	}
	return safetensors.WriteFile(path, ts, metadata)
}

// LoadModel reads a model file written by SaveModel into ctx's /model scope:
// existing variables must have the stored shape and dtype and get the stored
// value; missing ones are created (trainable). It returns the file's metadata.
func LoadModel(path string, ctx *mlctx.Context) (map[string]string, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	for _, name := range r.Names() {
		scope, vname := splitParameterName(name)
		if err := loadInto(r, name, ctx, scope, vname); err != nil {
			return nil, err
		}
	}
	return r.Metadata(), nil
}

// loadInto sets (or creates) the variable scope/vname from tensor name of r.
func loadInto(r *safetensors.Reader, name string, ctx *mlctx.Context, scope, vname string) error {
	v := ctx.GetVariableByScopeAndName(scope, vname)
	want := dtypes.InvalidDType
	if v != nil {
		want = v.Shape().DType
	}
	t, err := tensorFromFile(r, name, want)
	if err != nil {
		return err
	}
	if v == nil {
		ctx.InAbsPath(scope).Checked(false).VariableWithValue(vname, t)
		return nil
	}
	if !v.Shape().Equal(t.Shape()) {
		return fmt.Errorf("safetensors file %s: tensor %q has shape %s, variable %s has %s", r.Name(), name, t.Shape(), v.ScopeAndName(), v.Shape())
	}
	return v.SetValue(t)
}

// saveState writes every variable of ctx (model, adapters, optimizer state,
// step counters) to path atomically, named by scope and name, with metadata.
func saveState(path string, ctx *mlctx.Context, metadata map[string]string) error {
	var ts []safetensors.Tensor
	for _, v := range sortedVariables(ctx) {
		t, err := tensorOf(v.ScopeAndName(), v)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	return safetensors.WriteFile(path, ts, metadata)
}

// writeCheckpoint writes a training loop's checkpoint: every variable of
// ctx and the loop's state, as JSON under stateKey in the metadata.
func writeCheckpoint(path, phase string, ctx *mlctx.Context, state any) error {
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := saveState(path, ctx, map[string]string{stateKey: string(data)}); err != nil {
		return fmt.Errorf("%s: writing checkpoint: %w", phase, err)
	}
	return nil
}

// readCheckpoint restores a checkpoint written by writeCheckpoint into ctx
// and returns the loop's state; nil (and no error) when there is no file. A
// checkpoint of another configuration (fingerprintOf(state) ≠ fingerprint)
// is an error.
func readCheckpoint[S any](path, phase, fingerprint string, ctx *mlctx.Context, fingerprintOf func(*S) string) (*S, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	meta, err := loadState(path, ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: resuming: %w (delete the file to start over)", phase, err)
	}
	st := new(S)
	if err := json.Unmarshal([]byte(meta[stateKey]), st); err != nil {
		return nil, fmt.Errorf("%s: checkpoint %s: reading its %s metadata: %w", phase, path, stateKey, err)
	}
	if got := fingerprintOf(st); got != fingerprint {
		return nil, fmt.Errorf("%s: checkpoint %s belongs to another configuration (fingerprint %.12s…, this run %.12s…); delete it or choose another checkpoint directory",
			phase, path, got, fingerprint)
	}
	return st, nil
}

// loadState restores a file written by saveState into ctx before the
// training graph is built: every variable ctx already has (the model and its
// adapters) must be stored, with the same shape; stored variables ctx lacks
// (the new head, the optimizer's state and counters) are created — trainable
// only inside the model scope, as the graph would create them.
func loadState(path string, ctx *mlctx.Context) (map[string]string, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	stored := map[string]bool{}
	for _, name := range r.Names() {
		stored[name] = true
	}
	for v := range ctx.IterVariables() {
		if !stored[v.ScopeAndName()] {
			return nil, fmt.Errorf("checkpoint %s: variable %s of this training run is missing", path, v.ScopeAndName())
		}
	}
	for _, name := range r.Names() {
		scope, vname := mlctx.SplitScope(name)
		existed := ctx.GetVariableByScopeAndName(scope, vname) != nil
		if err := loadInto(r, name, ctx, scope, vname); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		if !existed {
			_, inModel := ParameterName(scope, vname)
			ctx.GetVariableByScopeAndName(scope, vname).SetTrainable(inModel)
		}
	}
	return r.Metadata(), nil
}

// finite reports whether x is neither NaN nor ±Inf.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
