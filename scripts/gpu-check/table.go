package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// readSteps reads the JSON lines of `gpu-check step` and gpu-check-torch.py.
func readSteps(paths []string) ([]stepResult, error) {
	var rows []stepResult
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			var r stepResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %w", p, n, err)
			}
			rows = append(rows, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return rows, nil
}

// stepVerdict is how prism's step compares with PyTorch eager's.
type stepVerdict struct {
	Prism          stepResult
	Fastest        stepResult // the fastest PyTorch row with the batch on the device
	Strict         stepResult // PyTorch explicit attention, full float32, batch on device
	RatioFastest   float64    // prism ms / fastest ms
	RatioStrict    float64
	MetFastest     bool // RatioFastest ≤ 1
	MetStrict      bool
	HaveFast, Have bool
}

// judgeSteps checks that every row times the same model (equal parameter
// counts) and compares prism's on-device step with PyTorch's.
func judgeSteps(rows []stepResult) (stepVerdict, error) {
	var v stepVerdict
	if len(rows) == 0 {
		return v, fmt.Errorf("no timings")
	}
	for _, r := range rows[1:] {
		if r.Trainable != rows[0].Trainable || r.Params != rows[0].Params || r.Batch != rows[0].Batch || r.Image != rows[0].Image {
			return v, fmt.Errorf("%s %q times a different model (%d of %d parameters trainable, batch %d, image %d) than %s %q (%d of %d, batch %d, image %d)",
				r.Impl, r.Variant, r.Trainable, r.Params, r.Batch, r.Image, rows[0].Impl, rows[0].Variant, rows[0].Trainable, rows[0].Params, rows[0].Batch, rows[0].Image)
		}
	}
	for _, r := range rows {
		onDevice := strings.Contains(r.Variant, "on device")
		switch {
		case r.Impl == "prism" && onDevice && !v.Have:
			v.Prism, v.Have = r, true
		case r.Impl == "torch" && onDevice:
			if !v.HaveFast || r.Ms < v.Fastest.Ms {
				v.Fastest, v.HaveFast = r, true
			}
			if strings.HasPrefix(r.Variant, "explicit attention, float32") {
				v.Strict = r
			}
		}
	}
	if v.Have && v.HaveFast {
		v.RatioFastest = v.Prism.Ms / v.Fastest.Ms
		v.MetFastest = v.RatioFastest <= 1
		if v.Strict.Ms > 0 {
			v.RatioStrict = v.Prism.Ms / v.Strict.Ms
			v.MetStrict = v.RatioStrict <= 1
		}
	}
	return v, nil
}

func writeStepTable(w io.Writer, rows []stepResult, v stepVerdict) {
	r0 := rows[0]
	fmt.Fprintf(w, "LoRA fine-tuning step: ViT %d×%d×%d, patch %d, width %d, depth %d, heads %d, MLP %d; batch %d; rank %d on every attention/MLP linear; %s; %d of %d parameters trainable\n\n",
		r0.Image, r0.Image, r0.Channels, r0.Patch, r0.Width, r0.Depth, r0.Heads, r0.MLP, r0.Batch, r0.Rank, r0.DType, r0.Trainable, r0.Params)
	fmt.Fprintln(w, "| implementation | variant | device / backend | ms/step (median) | min | first step (s) | prism ÷ this |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|")
	for _, r := range rows {
		ratio := "—"
		if v.Have && r.Ms > 0 {
			ratio = fmt.Sprintf("%.2f×", v.Prism.Ms/r.Ms)
		}
		dev := r.Backend
		if r.Description != "" {
			dev += ": " + r.Description
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.2f | %.2f | %s |\n", r.Impl, r.Variant, dev, r.Ms, r.MinMs, r.FirstStepS, ratio)
	}
	fmt.Fprintln(w)
	switch {
	case !v.Have || !v.HaveFast:
		fmt.Fprintln(w, "no verdict: need a prism row and a PyTorch row with the batch on the device")
	default:
		fmt.Fprintf(w, "target prism ≤ 1.0× PyTorch eager: vs the fastest PyTorch variant (%s): %.2f× — %s\n",
			v.Fastest.Variant, v.RatioFastest, metText(v.MetFastest))
		if v.RatioStrict > 0 {
			fmt.Fprintf(w, "                                  vs PyTorch with the same ops in full float32 (%s): %.2f× — %s\n",
				v.Strict.Variant, v.RatioStrict, metText(v.MetStrict))
		}
	}
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func runTable(args []string) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("want JSON-lines files of step timings")
	}
	rows, err := readSteps(fs.Args())
	if err != nil {
		return err
	}
	v, err := judgeSteps(rows)
	if err != nil {
		return err
	}
	writeStepTable(os.Stdout, rows, v)
	return nil
}
