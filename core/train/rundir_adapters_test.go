package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/adapter/peft"
	"github.com/prism-lora/prism/core/safetensors"
)

// TestRunDirAdaptersToPEFT fine-tunes for real (digits → transposed
// digits) and checks that the run directory's adapters, exported in PEFT's
// format and applied to the pretrained weights W₀ the way PEFT applies them
// (computed here from the exported files), give the fine-tuned layers: the
// merged weights W₁ of weights_finetuned and the layer outputs on the probe
// inputs.
func TestRunDirAdaptersToPEFT(t *testing.T) {
	cache := sharedCache(t)
	for _, method := range []string{adapter.MethodLoRA, adapter.MethodMid, adapter.MethodPiSSA, adapter.MethodMiLoRA,
		adapter.MethodOLoRA, adapter.MethodDoRA} {
		t.Run(method, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			cfg := digitsFinetune(method)
			cfg.RunDir, cfg.ProbeExamples = dir, 50
			cfg.Hyper.Epochs = 1
			if _, err := Finetune(context.Background(), cfg, testOptions(t, cache)); err != nil {
				t.Fatal(err)
			}
			trained, err := peft.ReadTrained(filepath.Join(dir, RunAdaptersFile))
			if err != nil {
				t.Fatal(err)
			}
			var network struct{ Kind string }
			if err := json.Unmarshal([]byte(trained.Metadata[peft.MetaNetwork]), &network); err != nil || network.Kind != "test-mlp" ||
				trained.Metadata[peft.MetaPretrainedKey] == "" || len(trained.Saved) != 1 || trained.Saved[0].Name != HeadB {
				t.Errorf("adapters metadata %v, saved %d modules (%v)", trained.Metadata, len(trained.Saved), err)
			}
			out := t.TempDir()
			if _, err := peft.Export(out, trained, peft.Options{Float64: true}); err != nil {
				t.Fatal(err)
			}
			var config map[string]any
			data, err := os.ReadFile(filepath.Join(out, peft.ConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &config); err != nil {
				t.Fatal(err)
			}
			r := config["r"].(float64)
			scaling := config["lora_alpha"].(float64) / r
			if want := cfg.AdapterConfig().Scale(); math.Abs(scaling-want) > 1e-12 {
				t.Errorf("PEFT's scaling %v, trained %v", scaling, want)
			}
			wantR := 2 * cfg.Rank
			if method == adapter.MethodLoRA || method == adapter.MethodDoRA {
				wantR = cfg.Rank
			}
			if int(r) != wantR {
				t.Errorf("exported rank %v, want %d", r, wantR)
			}
			adapters := mustOpen(t, filepath.Join(out, peft.WeightsFile))
			w0File := mustOpen(t, filepath.Join(dir, RunPretrainedFile))
			w1File := mustOpen(t, filepath.Join(dir, RunFinetunedFile))
			probes := mustOpen(t, filepath.Join(dir, RunProbesFile))
			for _, layer := range []string{"fc1", "fc2"} {
				w0, err := safetensors.ReadMatrix[float64](w0File, layer)
				if err != nil {
					t.Fatal(err)
				}
				w1, err := safetensors.ReadMatrix[float64](w1File, layer)
				if err != nil {
					t.Fatal(err)
				}
				a, err := safetensors.ReadMatrix[float64](adapters, "base_model.model."+layer+".lora_A.weight")
				if err != nil {
					t.Fatal(err)
				}
				b, err := safetensors.ReadMatrix[float64](adapters, "base_model.model."+layer+".lora_B.weight")
				if err != nil {
					t.Fatal(err)
				}
				m, n := w0.Rows, w0.Cols
				w := make([]float64, m*n) // PEFT: W0 + scaling·B·A (DoRA: rows rescaled)
				for i := range m {
					for j := range n {
						s := 0.0
						for k := range a.Rows {
							s += b.Data[i*b.Cols+k] * a.Data[k*n+j]
						}
						w[i*n+j] = w0.Data[i*n+j] + scaling*s
					}
				}
				if method == adapter.MethodDoRA {
					mag, err := adapters.Float64s("base_model.model." + layer + ".lora_magnitude_vector")
					if err != nil {
						t.Fatal(err)
					}
					for i := range m {
						norm := 0.0
						for j := range n {
							norm += w[i*n+j] * w[i*n+j]
						}
						for j := range n {
							w[i*n+j] *= mag[i] / math.Sqrt(norm)
						}
					}
				}
				worst, scale, change := 0.0, 0.0, 0.0
				for i := range w {
					worst, scale = math.Max(worst, math.Abs(w[i]-w1.Data[i])), math.Max(scale, math.Abs(w1.Data[i]))
					change = math.Max(change, math.Abs(w1.Data[i]-w0.Data[i]))
				}
				t.Logf("%s: max |W₁ − W₀| = %.3g, max |PEFT − W₁| = %.3g", layer, change, worst)
				if change < 1e-3*scale {
					t.Errorf("%s: fine-tuning changed the weight by only %.3g: the test would not see a wrong export", layer, change)
				}
				// W₀ and the frozen Wres are float32 in the model: rounding.
				if worst > 1e-6*scale {
					t.Errorf("%s: PEFT's weight differs from the fine-tuned W₁ by %.3g (scale %.3g)", layer, worst, scale)
				}
				x, err := safetensors.ReadMatrix[float64](probes, layer)
				if err != nil {
					t.Fatal(err)
				}
				worst, scale = 0, 0
				for s := range x.Rows {
					for o := range m {
						yPEFT, yRun := 0.0, 0.0
						for j := range n {
							yPEFT += w[o*n+j] * x.Data[s*n+j]
							yRun += w1.Data[o*n+j] * x.Data[s*n+j]
						}
						worst, scale = math.Max(worst, math.Abs(yPEFT-yRun)), math.Max(scale, math.Abs(yRun))
					}
				}
				if worst > 1e-5*scale {
					t.Errorf("%s: layer outputs differ by %.3g (scale %.3g)", layer, worst, scale)
				}
			}
		})
	}
}
