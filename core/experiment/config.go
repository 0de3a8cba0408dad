package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// RunSchema is the version of RunConfig's canonical encoding. It is part of
// every run ID: changing what a field means, or adding one that changes
// results, must bump it so old results are never mistaken for new ones.
const RunSchema = 1

// RunConfig is one fully resolved grid point: everything a run kind needs, and
// nothing that does not change the result (no spec name, output directory or
// executor). Its canonical JSON encoding (fixed field order, sorted map keys,
// shortest round-trip numbers, every free-form number a float64) is hashed
// into the run's ID.
type RunConfig struct {
	Schema       int             `json:"schema"`
	Kind         string          `json:"kind"`
	Model        ModelConfig     `json:"model"`
	Pretrain     *PretrainConfig `json:"pretrain,omitempty"`
	Finetune     FinetuneConfig  `json:"finetune"`
	Method       string          `json:"method"`
	MethodParams map[string]any  `json:"method_params,omitempty"`
	// Window is set for methods with a window (pissa, milora, mid, window).
	Window       *Window  `json:"window,omitempty"`
	Rank         int      `json:"rank,omitempty"`
	Alpha        float64  `json:"alpha,omitempty"`
	RSLoRA       bool     `json:"rslora,omitempty"`
	SVD          string   `json:"svd,omitempty"`
	Targets      []string `json:"targets,omitempty"`
	LearningRate float64  `json:"learning_rate"`
	Seed         uint64   `json:"seed"`
	Epochs       int      `json:"epochs"`
}

// ModelConfig names the model; Params are its kind-specific settings.
type ModelConfig struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params,omitempty"`
}

// PretrainConfig is how the base model is obtained (see PretrainSpec).
type PretrainConfig struct {
	Task         string         `json:"task,omitempty"`
	Checkpoint   string         `json:"checkpoint,omitempty"`
	Epochs       int            `json:"epochs,omitempty"`
	LearningRate float64        `json:"learning_rate,omitempty"`
	BatchSize    int            `json:"batch_size,omitempty"`
	Seed         uint64         `json:"seed"`
	Params       map[string]any `json:"params,omitempty"`
}

// FinetuneConfig is the task sequence and fixed training settings.
type FinetuneConfig struct {
	Tasks     []string       `json:"tasks"`
	BatchSize int            `json:"batch_size,omitempty"`
	Params    map[string]any `json:"params,omitempty"`
}

// Window says where an adapter's window of singular components starts. Its
// fields match core/lowrank.WindowSpec one for one, so a run kind converts
// with lowrank.WindowSpec(*cfg.Window).
//
//	Preset "pissa" (s = 0), "milora" (s = k−r), "mid" (s = ⌊(k−r)/2⌋),
//	"start" (s = Start), "fraction" (s = round(Fraction·(k−r))).
type Window struct {
	Preset   string  `json:"preset"`
	Start    int     `json:"start,omitempty"`
	Fraction float64 `json:"fraction,omitempty"`
}

func (w Window) String() string {
	switch w.Preset {
	case "start":
		return fmt.Sprintf("s=%d", w.Start)
	case "fraction":
		return "f=" + formatFloat(w.Fraction)
	}
	return w.Preset
}

// Canonical returns the canonical JSON encoding that ID hashes.
func (c RunConfig) Canonical() ([]byte, error) {
	var err error
	if c.Model.Params, err = canonicalParams(c.Model.Params); err != nil {
		return nil, fmt.Errorf("experiment: model.params: %w", err)
	}
	if c.Pretrain != nil {
		p := *c.Pretrain
		if p.Params, err = canonicalParams(p.Params); err != nil {
			return nil, fmt.Errorf("experiment: pretrain.params: %w", err)
		}
		c.Pretrain = &p
	}
	if c.Finetune.Params, err = canonicalParams(c.Finetune.Params); err != nil {
		return nil, fmt.Errorf("experiment: finetune.params: %w", err)
	}
	if c.MethodParams, err = canonicalParams(c.MethodParams); err != nil {
		return nil, fmt.Errorf("experiment: method_params: %w", err)
	}
	return json.Marshal(c)
}

// ID is the run's content address: hex SHA-256 of "prism-run\n" followed by
// the canonical encoding. Equal configurations have equal IDs in every spec.
func (c RunConfig) ID() (string, error) {
	b, err := c.Canonical()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte("prism-run\n"))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// MustID is ID for configurations known to encode (those from Expand).
func (c RunConfig) MustID() string {
	id, err := c.ID()
	if err != nil {
		panic(err)
	}
	return id
}

// ShortID is the first 12 hex digits of an ID, for display.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Series is the run's method with its window ("pissa", "window s=8",
// "window f=0.5", "lora"): runs of one series differ only in hyperparameters
// and seeds.
func (c RunConfig) Series() string {
	if c.Window == nil || c.Window.Preset == c.Method {
		return c.Method
	}
	return c.Method + " " + c.Window.String()
}

// Label is a one-line human description of the run.
func (c RunConfig) Label() string {
	parts := []string{c.Series()}
	if c.Rank > 0 {
		parts = append(parts, fmt.Sprintf("r=%d", c.Rank), "α="+formatFloat(c.Alpha))
	}
	parts = append(parts, "lr="+formatFloat(c.LearningRate), fmt.Sprintf("ep=%d", c.Epochs), fmt.Sprintf("seed=%d", c.Seed))
	if len(c.Finetune.Tasks) > 1 {
		parts = append(parts, "tasks="+strings.Join(c.Finetune.Tasks, "→"))
	}
	return strings.Join(parts, " ")
}

// PretrainKey is the content address of the base model a run starts from
// (model and pretraining configuration only): runs with the same key share
// one pretrained checkpoint. Use it as the key of Cache.Do.
func (c RunConfig) PretrainKey() string {
	type key struct {
		Schema   int             `json:"schema"`
		Kind     string          `json:"kind"`
		Model    ModelConfig     `json:"model"`
		Pretrain *PretrainConfig `json:"pretrain,omitempty"`
	}
	cc := c
	cc.MethodParams, cc.Finetune.Params = nil, nil
	b, err := cc.Canonical() // canonicalises the params maps
	if err != nil {
		panic(err)
	}
	var full RunConfig
	if err := json.Unmarshal(b, &full); err != nil {
		panic(err)
	}
	kb, _ := json.Marshal(key{Schema: RunSchema, Kind: full.Kind, Model: full.Model, Pretrain: full.Pretrain})
	h := sha256.Sum256(append([]byte("prism-pretrain\n"), kb...))
	return hex.EncodeToString(h[:])
}
