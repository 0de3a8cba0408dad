package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prism-lora/prism/core/lowrank"
	"github.com/prism-lora/prism/core/safetensors"
)

func TestLowrankInitMethods(t *testing.T) {
	dir := t.TempDir()
	in, weights := writeFixture(t, dir)
	cases := []struct {
		name       string
		opts       lowrankInitOptions
		starts     map[int]int // start by k (16 or 12)
		window     string
		svdWindows bool
	}{
		{"pissa", lowrankInitOptions{Method: "pissa"}, map[int]int{16: 0, 12: 0}, "pissa", true},
		{"milora", lowrankInitOptions{Method: "milora"}, map[int]int{16: 12, 12: 8}, "milora", true},
		{"mid", lowrankInitOptions{Method: "mid"}, map[int]int{16: 6, 12: 4}, "mid", true},
		{"start", lowrankInitOptions{Method: "window", Start: 2, StartSet: true}, map[int]int{16: 2, 12: 2}, "start=2", true},
		{"fraction", lowrankInitOptions{Method: "window", Fraction: 0.5, FractionSet: true}, map[int]int{16: 6, 12: 4}, "fraction=0.5", true},
		{"lora", lowrankInitOptions{Method: "lora", Seed: 7}, map[int]int{16: 0, 12: 0}, "none", false},
		{"olora", lowrankInitOptions{Method: "olora"}, map[int]int{16: 0, 12: 0}, "none", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			o.In, o.Out, o.Rank, o.Alpha, o.SVD = in, filepath.Join(dir, c.name+".safetensors"), 4, 8, "full"
			var stdout, stderr bytes.Buffer
			o.Stdout, o.Stderr = &stdout, &stderr
			if err := runLowrankInit(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr not clean without a terminal: %q", stderr.String())
			}
			r, err := safetensors.Open(o.Out)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var want []string
			for name := range weights {
				want = append(want, name+".lora_A", name+".lora_B", name+".base")
			}
			got := r.Names()
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("output tensors %v, want %v", got, want)
			}
			meta := r.Metadata()
			for key, value := range map[string]string{"method": o.Method, "rank": "4", "alpha": "8", "scale": "2",
				"rslora": "false", "svd": "full", "window": c.window, "format": "prism.lowrank"} {
				if meta[key] != value {
					t.Errorf("metadata %s = %q, want %q", key, meta[key], value)
				}
			}
			var layers []string
			if err := json.Unmarshal([]byte(meta["layers"]), &layers); err != nil || len(layers) != len(weights) {
				t.Errorf("metadata layers = %q", meta["layers"])
			}
			if meta["start"] != strconv.Itoa(c.starts[16]) {
				t.Errorf("metadata start = %q, want %d", meta["start"], c.starts[16])
			}
			wideKey := "start.enc.wide.weight"
			if c.starts[12] != c.starts[16] {
				if meta[wideKey] != strconv.Itoa(c.starts[12]) {
					t.Errorf("metadata %s = %q, want %d", wideKey, meta[wideKey], c.starts[12])
				}
			} else if _, ok := meta[wideKey]; ok {
				t.Errorf("metadata has %s although the start is the common one", wideKey)
			}
			const scale = 2.0
			for name, w := range weights {
				info, _ := r.Info(name + ".base")
				if info.DType != w.dtype {
					t.Errorf("%s.base is %s, want the input's %s", name, info.DType, w.dtype)
				}
				a, b, base := readAdapter(t, r, name)
				if a.Rows != 4 || a.Cols != w.n || b.Rows != w.m || b.Cols != 4 || base.Rows != w.m || base.Cols != w.n {
					t.Fatalf("%s: A %d×%d, B %d×%d, base %d×%d", name, a.Rows, a.Cols, b.Rows, b.Cols, base.Rows, base.Cols)
				}
				wm := lowrank.Matrix[float64]{Rows: w.m, Cols: w.n, Data: w.data}
				tol := 1e-6
				if w.dtype == safetensors.F64 {
					tol = 1e-13
				}
				if e := relIdentityError(wm, lowrank.Adapter[float64]{Rank: 4, Scale: scale, A: a, B: b, Base: base}); e > tol {
					t.Errorf("%s: ‖W − (base + scale·B·A)‖/‖W‖ = %.2e > %.0e", name, e, tol)
				}
				if !strings.Contains(stdout.String(), name) {
					t.Errorf("report does not list %s", name)
				}
				switch {
				case c.svdWindows:
					s := c.starts[min(w.m, w.n)]
					stol := 1e-4
					if w.dtype == safetensors.F64 {
						stol = 1e-10
					}
					for t2 := range 4 {
						// ‖B_t‖² = ‖A_t‖² = σ_{s+t}/scale.
						if e := relErr(scale*columnNormSq(b, t2), w.sigma[s+t2]); e > stol {
							t.Errorf("%s: scale·‖B[:,%d]‖² off σ_%d by %.1e", name, t2, s+t2, e)
						}
						if e := relErr(scale*rowNormSq(a, t2), w.sigma[s+t2]); e > stol {
							t.Errorf("%s: scale·‖A[%d,:]‖² off σ_%d by %.1e", name, t2, s+t2, e)
						}
					}
				case o.Method == "lora":
					bound := 1 / math.Sqrt(float64(w.n))
					for _, v := range b.Data {
						if v != 0 {
							t.Fatalf("%s: LoRA B must be zero", name)
						}
					}
					for _, v := range a.Data {
						if math.Abs(v) > bound {
							t.Fatalf("%s: LoRA A value %v outside ±1/√n", name, v)
						}
					}
					if !slices.Equal(base.Data, w.data) {
						t.Errorf("%s: LoRA base must equal W", name)
					}
				case o.Method == "olora":
					for i := range 4 {
						for j := range 4 {
							var dot float64
							for row := range b.Rows {
								dot += b.At(row, i) * b.At(row, j)
							}
							want := 0.0
							if i == j {
								want = 1
							}
							if math.Abs(dot-want) > 1e-5 {
								t.Errorf("%s: OLoRA B columns not orthonormal: (%d,%d) = %v", name, i, j, dot)
							}
						}
						for j := range i {
							if math.Abs(a.At(i, j)) > 1e-5 {
								t.Errorf("%s: OLoRA A = R[:r,:] must be upper-triangular, A[%d,%d] = %v", name, i, j, a.At(i, j))
							}
						}
					}
				}
			}
			out := stdout.String()
			if !strings.Contains(out, "skipped 4 tensors") {
				t.Errorf("report does not list the 4 skipped tensors:\n%s", out)
			}
			for name, reason := range fixtureSkipped {
				if !strings.Contains(out, name+": "+reason) {
					t.Errorf("report does not say %q for %s:\n%s", reason, name, out)
				}
			}
			if got := dirEntries(t, dir); slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, ".tmp") }) {
				t.Errorf("temporary files left: %v", got)
			}
		})
	}
}

func TestLowrankInitScalesAndRandomized(t *testing.T) {
	dir := t.TempDir()
	in, weights := writeFixture(t, dir)
	out := filepath.Join(dir, "rs.safetensors")
	o := lowrankInitOptions{In: in, Out: out, Method: "pissa", Rank: 4, Alpha: 4, RSLoRA: true,
		SVD: "randomized", NIter: 4, NIterSet: true, Seed: 3, Targets: `enc\.(q|fc2)\.weight`}
	if err := runLowrankInit(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	meta := r.Metadata()
	if meta["scale"] != "2" || meta["rslora"] != "true" || meta["niter"] != "4" || meta["svd"] != "randomized" ||
		meta["randomized"] != "krylov" || meta["oversample"] != "0" {
		t.Fatalf("metadata %v: want scale α/√r = 2, rslora, randomized krylov, niter 4, oversample 0", meta)
	}
	if len(r.Names()) != 6 {
		t.Fatalf("--targets selected %v", r.Names())
	}
	for _, name := range []string{"enc.q.weight", "enc.fc2.weight"} {
		w := weights[name]
		_, b, _ := readAdapter(t, r, name)
		for k := range 4 {
			// Randomized top-r values agree with the exact ones within 1e-3.
			if e := relErr(2*columnNormSq(b, k), w.sigma[k]); e > 1e-3 {
				t.Errorf("%s: randomized σ_%d off by %.1e", name, k, e)
			}
		}
	}
}

// TestLowrankInitSubspace: --randomized subspace takes its own defaults
// (niter 4, oversample 24) unless given, and records them.
func TestLowrankInitSubspace(t *testing.T) {
	dir := t.TempDir()
	in, weights := writeFixture(t, dir)
	for _, tc := range []struct {
		o                 lowrankInitOptions
		niter, oversample string
	}{
		{lowrankInitOptions{Randomized: "subspace"}, "4", "24"},
		{lowrankInitOptions{Randomized: "subspace", NIter: 6, NIterSet: true, Oversample: 8, OversampleSet: true}, "6", "8"},
	} {
		o := tc.o
		o.In, o.Out, o.Method, o.Rank, o.SVD, o.Seed, o.Targets = in, filepath.Join(dir, "s.safetensors"), "pissa", 4, "randomized", 5, `enc\.q\.weight`
		if err := runLowrankInit(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		r, err := safetensors.Open(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		meta := r.Metadata()
		if meta["randomized"] != "subspace" || meta["niter"] != tc.niter || meta["oversample"] != tc.oversample {
			t.Errorf("metadata %v: want randomized subspace, niter %s, oversample %s", meta, tc.niter, tc.oversample)
		}
		_, b, _ := readAdapter(t, r, "enc.q.weight")
		for k := range 4 {
			if e := relErr(columnNormSq(b, k), weights["enc.q.weight"].sigma[k]); e > 1e-3 {
				t.Errorf("σ_%d off by %.1e", k, e)
			}
		}
		r.Close()
	}
}

func TestLowrankInitHalfPrecisionInput(t *testing.T) {
	dir := t.TempDir()
	// W (8×6) of values exactly representable in F16 and BF16.
	vals := make([]uint16, 48)
	for i := range vals {
		vals[i] = 0x3c00 + uint16(37*i%200) // F16 values in [1, 1.2)
	}
	bf := make([]uint16, 48)
	for i := range bf {
		bf[i] = 0x3f80 + uint16((53*i)%90) - 45 // BF16 values around 1
	}
	enc := func(v []uint16) []byte {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			b[2*i], b[2*i+1] = byte(x), byte(x>>8)
		}
		return b
	}
	in := filepath.Join(dir, "half.safetensors")
	if err := safetensors.WriteFile(in, []safetensors.Tensor{
		safetensors.FromRaw("h", safetensors.F16, []int{8, 6}, enc(vals)),
		safetensors.FromRaw("b", safetensors.BF16, []int{8, 6}, enc(bf)),
	}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	var stdout bytes.Buffer
	if err := runLowrankInit(context.Background(), lowrankInitOptions{In: in, Out: out, Method: "mid", Rank: 2, SVD: "full", Stdout: &stdout}); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src, _ := safetensors.Open(in)
	defer src.Close()
	meta := r.Metadata()
	if meta["input_dtype.h"] != "F16" || meta["input_dtype.b"] != "BF16" {
		t.Errorf("metadata does not record the input dtypes: %v", meta)
	}
	for _, name := range []string{"h", "b"} {
		info, _ := r.Info(name + ".base")
		if info.DType != safetensors.F32 {
			t.Errorf("%s.base is %s, want F32", name, info.DType)
		}
		w, err := safetensors.ReadMatrix[float64](src, name)
		if err != nil {
			t.Fatal(err)
		}
		a, b, base := readAdapter(t, r, name)
		if e := relIdentityError(w, lowrank.Adapter[float64]{Rank: 2, Scale: 1, A: a, B: b, Base: base}); e > 1e-6 {
			t.Errorf("%s: identity error %.2e", name, e)
		}
	}
	if !strings.Contains(stdout.String(), "F16→F32") || !strings.Contains(stdout.String(), "BF16→F32") {
		t.Errorf("report does not show the dtype conversion:\n%s", stdout.String())
	}
}

func TestLowrankInitDeterministic(t *testing.T) {
	dir := t.TempDir()
	in, _ := writeFixture(t, dir)
	for _, method := range []string{"mid", "lora"} {
		var files [2][]byte
		for i := range files {
			out := filepath.Join(dir, method+strconv.Itoa(i)+".safetensors")
			if err := runLowrankInit(context.Background(), lowrankInitOptions{In: in, Out: out, Method: method, Rank: 3, SVD: "full", Seed: 5}); err != nil {
				t.Fatal(err)
			}
			var err error
			if files[i], err = os.ReadFile(out); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(files[0], files[1]) {
			t.Errorf("%s: two runs wrote different bytes", method)
		}
	}
}

// Every invalid input is an error that names the flag or tensor, and no
// output (nor temporary file) is left behind.
func TestLowrankInitErrors(t *testing.T) {
	dir := t.TempDir()
	in, _ := writeFixture(t, dir)
	out := filepath.Join(dir, "out.safetensors")
	ok := lowrankInitOptions{In: in, Out: out, Method: "pissa", Rank: 4, SVD: "full"}
	nanPath := filepath.Join(dir, "nan.safetensors")
	vals := make([]float32, 20)
	for i := range vals {
		vals[i] = float32(i % 7)
	}
	vals[5] = float32(math.NaN())
	if err := safetensors.WriteFile(nanPath, []safetensors.Tensor{safetensors.FromFloats("blocks.1.w", []int{4, 5}, vals)}, nil); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	good, _ := os.ReadFile(in)
	if err := os.WriteFile(corrupt, good[:len(good)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	with := func(f func(o *lowrankInitOptions)) lowrankInitOptions {
		o := ok
		f(&o)
		return o
	}
	cases := map[string]struct {
		opts lowrankInitOptions
		want []string
	}{
		"no in":                {with(func(o *lowrankInitOptions) { o.In = "" }), []string{"--in is required"}},
		"no out":               {with(func(o *lowrankInitOptions) { o.Out = "" }), []string{"--out is required"}},
		"out is in":            {with(func(o *lowrankInitOptions) { o.Out = o.In }), []string{"--out", "is the input file"}},
		"no method":            {with(func(o *lowrankInitOptions) { o.Method = "" }), []string{"--method is required"}},
		"bad method":           {with(func(o *lowrankInitOptions) { o.Method = "dora" }), []string{`--method "dora" is unknown`, "lora, pissa, milora, mid, window or olora"}},
		"rank 0":               {with(func(o *lowrankInitOptions) { o.Rank = 0 }), []string{"--rank must be an integer ≥ 1 (got 0)"}},
		"alpha negative":       {with(func(o *lowrankInitOptions) { o.Alpha = -1 }), []string{"--alpha must be a positive number (got -1)"}},
		"bad svd":              {with(func(o *lowrankInitOptions) { o.SVD = "exact" }), []string{`--svd must be full or randomized (got "exact")`}},
		"niter with full":      {with(func(o *lowrankInitOptions) { o.NIterSet = true }), []string{"--niter applies only with --svd randomized"}},
		"oversample with full": {with(func(o *lowrankInitOptions) { o.OversampleSet = true }), []string{"--oversample applies only with --svd randomized"}},
		"subspace with full":   {with(func(o *lowrankInitOptions) { o.Randomized = "subspace" }), []string{"--randomized applies only with --svd randomized"}},
		"unknown randomized":   {with(func(o *lowrankInitOptions) { o.SVD, o.Randomized = "randomized", "lanczos" }), []string{"--randomized must be krylov or subspace", "lanczos"}},
		"negative oversample":  {with(func(o *lowrankInitOptions) { o.SVD, o.Oversample = "randomized", -2 }), []string{"--oversample must be ≥ 0"}},
		"both starts":          {with(func(o *lowrankInitOptions) { o.Method, o.StartSet, o.FractionSet = "window", true, true }), []string{"--start and --fraction"}},
		"window no start":      {with(func(o *lowrankInitOptions) { o.Method = "window" }), []string{"--method window needs", "--start S or --fraction F"}},
		"start with pissa":     {with(func(o *lowrankInitOptions) { o.Start, o.StartSet = 3, true }), []string{"--start applies only to --method window"}},
		"fraction range":       {with(func(o *lowrankInitOptions) { o.Method, o.Fraction, o.FractionSet = "window", 1.5, true }), []string{"--fraction must be in [0, 1] (got 1.5)"}},
		"negative start":       {with(func(o *lowrankInitOptions) { o.Method, o.Start, o.StartSet = "window", -2, true }), []string{"--start must be ≥ 0 (got -2)"}},
		"start too late":       {with(func(o *lowrankInitOptions) { o.Method, o.Start, o.StartSet = "window", 10, true }), []string{`"enc.wide.weight"`, "s=10", "r=4"}},
		"bad progress":         {with(func(o *lowrankInitOptions) { o.Progress = "sometimes" }), []string{"--progress must be auto, always or never"}},
		"bad regexp":           {with(func(o *lowrankInitOptions) { o.Targets = "enc.(q" }), []string{`--targets "enc.(q" is not a valid regular expression`}},
		"explicit 1-D":         {with(func(o *lowrankInitOptions) { o.Targets = "enc.q.weight|enc.q.bias" }), []string{`--targets names tensor "enc.q.bias"`, "not 2-D (shape [24])"}},
		"explicit small":       {with(func(o *lowrankInitOptions) { o.Targets = "head.weight" }), []string{`"head.weight"`, "rank 4 exceeds its 3 singular values"}},
		"explicit missing":     {with(func(o *lowrankInitOptions) { o.Targets = "enc.q.weight|enc.k.weight" }), []string{`--targets names tensor "enc.k.weight", which is not in`}},
		"matches none":         {with(func(o *lowrankInitOptions) { o.Targets = ".*\\.nothing" }), []string{`--targets ".*\\.nothing" selects no usable 2-D float tensor`}},
		"rank too big":         {with(func(o *lowrankInitOptions) { o.Rank = 20 }), []string{"holds no usable 2-D float tensor", "rank 20 exceeds"}},
		"NaN weight":           {with(func(o *lowrankInitOptions) { o.In, o.Rank = nanPath, 2 }), []string{`tensor "blocks.1.w"`, nanPath, "non-finite value NaN at [1, 0]"}},
		"corrupt input":        {with(func(o *lowrankInitOptions) { o.In = corrupt }), []string{corrupt, "truncated"}},
		"missing input":        {with(func(o *lowrankInitOptions) { o.In = filepath.Join(dir, "nope.safetensors") }), []string{"nope.safetensors", "no such file"}},
		"negative workers":     {with(func(o *lowrankInitOptions) { o.Workers = -1 }), []string{"--workers must be ≥ 0"}},
		"unwritable output":    {with(func(o *lowrankInitOptions) { o.Out = filepath.Join(dir, "no", "dir", "x.safetensors") }), []string{"x.safetensors"}},
	}
	before := dirEntries(t, dir)
	for name, c := range cases {
		err := runLowrankInit(context.Background(), c.opts)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", name, err, w)
			}
		}
		if after := dirEntries(t, dir); !slices.Equal(after, before) {
			t.Fatalf("%s: files changed: %v → %v", name, before, after)
		}
	}
	if !errors.Is(runLowrankInit(context.Background(), with(func(o *lowrankInitOptions) { o.In = corrupt })), safetensors.ErrFormat) {
		t.Error("a corrupt input should surface the safetensors format error")
	}
}

func TestLowrankInitCancelled(t *testing.T) {
	dir := t.TempDir()
	in, _ := writeFixture(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(dir, "out.safetensors")
	err := runLowrankInit(ctx, lowrankInitOptions{In: in, Out: out, Method: "mid", Rank: 2, SVD: "full"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a cancelled run left an output file")
	}
}

func TestParseTargets(t *testing.T) {
	sel, err := parseTargets(`blocks.0.attn.weight|.*\.mlp\.(fc1|fc2)\.weight|head.weight`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sel.explicit, []string{"blocks.0.attn.weight", "head.weight"}) {
		t.Errorf("explicit names %v", sel.explicit)
	}
	for name, want := range map[string]bool{
		"blocks.0.attn.weight": true, "blocks.3.mlp.fc2.weight": true, "head.weight": true,
		"blocks.0.attn.weight.extra": false, "x.head.weight": false, "blocks.1.attn.weight": false,
	} {
		if sel.matches(name) != want {
			t.Errorf("matches(%q) = %v, want %v (the whole name must match)", name, !want, want)
		}
	}
	if got := splitAlternatives(`a|[|]|(b|c)|\||d`); !slices.Equal(got, []string{"a", "[|]", "(b|c)", `\|`, "d"}) {
		t.Errorf("splitAlternatives = %q", got)
	}
}

func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := newProgressLine(&b, progressAlways)
	p.show(1, 2, "layer.a", 0)
	p.show(2, 2, "layer.b", 0)
	p.clear()
	if got := b.String(); got != "[1/2] layer.a (0.0s)\n[2/2] layer.b (0.0s)\n" {
		t.Errorf("always on a non-terminal: %q", got)
	}
	for _, mode := range []string{progressAuto, progressNever, ""} {
		b.Reset()
		p := newProgressLine(&b, mode)
		p.show(1, 1, "x", 0)
		p.clear()
		if b.Len() != 0 {
			t.Errorf("mode %q printed on a non-terminal: %q", mode, b.String())
		}
	}
}
