package adamw

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gopjrt/dtypes"
)

// state is the fused update's view of the optimizer's variables in the
// context (created, zero, on first use; restored by a checkpoint otherwise).
type state struct {
	ctx        *mlctx.Context
	m, v       []*mlctx.Variable // per trained variable, GoMLX's names
	adamStep   *mlctx.Variable   // /AdamOptimizer/global_step, int64
	globalStep *mlctx.Variable   // /global_step, int64
}

// state looks up (or creates) the moments and counters of o.vars.
func (o *Optimizer) state() (*state, error) {
	st := &state{
		ctx:        o.ctx,
		m:          make([]*mlctx.Variable, len(o.vars)),
		v:          make([]*mlctx.Variable, len(o.vars)),
		adamStep:   optimizers.GetGlobalStepVar(o.ctx.InAbsPath(mlctx.RootScope + adamScope)),
		globalStep: optimizers.GetGlobalStepVar(o.ctx),
	}
	for i, x := range o.vars {
		scope := mlctx.ScopeSeparator + adamScope + x.Scope()
		if x.Scope() == mlctx.RootScope {
			scope = mlctx.ScopeSeparator + adamScope
		}
		st.m[i] = moment(o.ctx, scope, x.Name()+"_1st_moment", x)
		st.v[i] = moment(o.ctx, scope, x.Name()+"_2nd_moment", x)
	}
	return st, nil
}

// moment returns the zero-initialised, non-trainable variable scope/name
// shaped like x.
func moment(ctx *mlctx.Context, scope, name string, x *mlctx.Variable) *mlctx.Variable {
	if v := ctx.GetVariableByScopeAndName(scope, name); v != nil {
		return v
	}
	return ctx.InAbsPath(scope).Checked(false).VariableWithValue(name, tensors.FromShape(x.Shape())).SetTrainable(false)
}

// count is the number of steps taken.
func (st *state) count() int64 {
	var n int64
	tensors.MustMutableFlatData(st.adamStep.MustValue(), func(flat []int64) { n = flat[0] })
	return n
}

// setCount records step as the number of steps taken (both counters, as
// GoMLX's Adam does) and lr as the learning rate.
func (st *state) setCount(step int64, dtype dtypes.DType, lr float64) {
	tensors.MustMutableFlatData(st.adamStep.MustValue(), func(flat []int64) { flat[0] = step })
	tensors.MustMutableFlatData(st.globalStep.MustValue(), func(flat []int64) { flat[0]++ })
	lrVar := optimizers.LearningRateVar(st.ctx, dtype, lr)
	_ = lrVar.MustValue().MutableFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			f[0] = float32(lr)
		case []float64:
			f[0] = lr
		}
	})
}

// deviceFlat returns t's values as a slice that aliases the backend's buffer
// of t, which the next execution reads: writes to it update t in place. t
// becomes an on-device tensor (shared with Go when it was local).
func deviceFlat[T float32 | float64](b backends.Backend, t *tensors.Tensor) ([]T, error) {
	if err := t.MaterializeOnDevice(b, true, 0); err != nil {
		return nil, err
	}
	var flat []T
	if t.IsShared() {
		err := tensors.MutableFlatData(t, func(f []T) { flat = f })
		return flat, err
	}
	buf, err := t.Buffer(b, 0)
	if err != nil {
		return nil, err
	}
	t.FinalizeLocal() // the device buffer is now the only copy
	data, err := b.BufferData(buf)
	if err != nil {
		return nil, err
	}
	flat, ok := data.([]T)
	if !ok || len(flat) != t.Size() {
		return nil, fmt.Errorf("adamw: buffer of %s holds %T[%d]", t.Shape(), data, len(flat))
	}
	return flat, nil
}
