package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/datasets"
)

// TextPretrainConfig says how to pretrain a language model on task A (a
// language-modelling dataset such as "kjv"). Everything in it is part of the
// cache key.
type TextPretrainConfig struct {
	Model models.LMConfig `json:"model"`
	// Task is the dataset of task A.
	Task  string `json:"task"`
	Hyper Hyper  `json:"hyper"`
	// TrainSubset and TestSubset restrict the splits to their first N
	// windows (of Model.Context tokens) of a fixed permutation; 0 means all.
	TrainSubset int `json:"train_subset,omitempty"`
	TestSubset  int `json:"test_subset,omitempty"`
	// EvalEvery is the number of steps between points of the curves (test
	// bits per character); 0 means one point per epoch.
	EvalEvery int `json:"eval_every,omitempty"`
}

// Validate checks the configuration (without loading anything).
func (c TextPretrainConfig) Validate() error {
	if err := c.Model.Validate(); err != nil {
		return err
	}
	if c.Task == "" {
		return fmt.Errorf("text pretrain: no task (dataset name)")
	}
	if err := c.Hyper.Validate(); err != nil {
		return fmt.Errorf("text pretrain: %w", err)
	}
	if c.TrainSubset < 0 || c.TestSubset < 0 || c.EvalEvery < 0 {
		return fmt.Errorf("text pretrain: subset sizes and eval_every must be ≥ 0 (0 = all, or once per epoch)")
	}
	return nil
}

// TextPretrained is a pretrained language model in the cache.
type TextPretrained struct {
	// Key is the content address: hex SHA-256 of the schema version, the
	// dataset's checksum and the whole configuration (model included).
	Key string `json:"key"`
	// Dir is the cache entry; ModelPath its weights (SaveModel's format).
	Dir       string `json:"-"`
	ModelPath string `json:"-"`
	Task      string `json:"task"`
	Checksum  string `json:"checksum"`
	// Model is the architecture.
	Model models.LMConfig `json:"model"`
	// Test is task A's score on the test split (or its subset).
	Test   TextScore       `json:"test"`
	Curves []TextEvalPoint `json:"curves"`
	// Seconds is the training wall time when the checkpoint was made.
	Seconds float64         `json:"seconds"`
	Config  json.RawMessage `json:"config"` // what was hashed
	// Cached reports that this call found the checkpoint in the cache.
	Cached bool `json:"-"`
}

// Load sets the pretrained variables in ctx's model scope (see LoadModel).
func (p *TextPretrained) Load(ctx *mlctx.Context) error {
	_, err := LoadModel(p.ModelPath, ctx)
	return err
}

// textPretrainKey returns the cache key and the hashed configuration.
func textPretrainKey(cfg TextPretrainConfig, checksum string) (string, []byte, error) {
	return hashJSON("prism-pretrain-text", struct {
		Schema   int                `json:"schema"`
		Checksum string             `json:"data_checksum"`
		Config   TextPretrainConfig `json:"config"`
	}{SchemaVersion, checksum, cfg})
}

// PretrainText returns the language model pretrained on cfg.Task: from the
// cache (CacheDir/pretrained/KEY/) when an entry with the same key exists,
// else by training it — resuming from KEY.partial/ when an earlier attempt
// was interrupted — and storing it atomically. Concurrent calls with the same
// key train once (a lock file), as Pretrain does for classifiers.
func PretrainText(goctx context.Context, cfg TextPretrainConfig, o Options) (*TextPretrained, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	data, err := o.open(goctx, cfg.Task)
	if err != nil {
		return nil, err
	}
	checksum, err := textChecksum(data)
	if err != nil {
		return nil, err
	}
	key, hashed, err := textPretrainKey(cfg, checksum)
	if err != nil {
		return nil, err
	}
	dir, err := o.pretrainedEntry(key)
	if err != nil {
		return nil, err
	}
	rep := newReporter(o.Callbacks, o.Quiet)
	if p, err := readTextPretrained(dir); err == nil {
		rep.logf("pretrained language model on %s: cached (%s, test %.4f bpc)", cfg.Task, dir, p.Test.BPC)
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	lock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	if p, err := readTextPretrained(dir); err == nil {
		rep.logf("pretrained language model on %s: cached (%s)", cfg.Task, dir)
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	trainSet, err := loadTextSplit(data, datasets.Train, cfg.Model.Context, cfg.TrainSubset)
	if err != nil {
		return nil, err
	}
	testSet, err := loadTextSplit(data, datasets.Test, cfg.Model.Context, cfg.TestSubset)
	if err != nil {
		return nil, err
	}
	if err := checkVocab(data, cfg.Model); err != nil {
		return nil, err
	}
	b, err := o.newBackend()
	if err != nil {
		return nil, err
	}
	ctx := mlctx.New()
	models.SetSeed(ctx.In(ModelScope), int64(cfg.Hyper.Seed))
	partial := dir + ".partial"
	l := &lmLoop{
		phase: "pretrain", backend: b, ctx: ctx, model: cfg.Model, linear: models.Dense, train: trainSet,
		evals: []textEvalSpec{{key: "test_bpc", data: testSet}}, hyper: cfg.Hyper, evalEvery: cfg.EvalEvery,
		checkpoint: filepath.Join(partial, "state.safetensors"), every: o.every(), fingerprint: key,
		report: rep, evalBatch: textEvalBatch(o, cfg.Model),
	}
	if o.afterStep != nil {
		l.afterStep = func(step int) { o.afterStep("pretrain", step) }
	}
	rep.logf("pretraining a language model on %s (%d windows of %d bytes, %s) → %s", cfg.Task, trainSet.Len(), cfg.Model.Context, epochsText(cfg.Hyper.Epochs), dir)
	curves, took, err := l.run(goctx)
	if err != nil {
		return nil, err
	}
	test, ok := l.last["test_bpc"]
	if !ok { // resumed after the last step: score again
		if test, err = l.score(l.evals[0]); err != nil {
			return nil, err
		}
	}
	p := &TextPretrained{Key: key, Task: cfg.Task, Checksum: checksum, Model: cfg.Model, Test: test, Curves: curves,
		Seconds: took.Seconds(), Config: hashed}
	if err := writeCacheEntry(filepath.Dir(dir), dir, ctx, key, p); err != nil {
		return nil, err
	}
	os.RemoveAll(partial)
	p.Dir, p.ModelPath = dir, filepath.Join(dir, modelFile)
	return p, nil
}

// checkVocab fails when the dataset's tokens do not fit the model's vocabulary.
func checkVocab(d datasets.InMemory, m models.LMConfig) error {
	if v := d.Spec().VocabSize; v > m.Vocab {
		return fmt.Errorf("dataset %s has %d token ids, the language model's vocabulary only %d", d.Spec().Name, v, m.Vocab)
	}
	return nil
}

// textEvalBatch is the evaluation batch in windows: Options.EvalBatch, else
// about 8,192 positions.
func textEvalBatch(o Options, m models.LMConfig) int {
	if o.EvalBatch > 0 {
		return o.EvalBatch
	}
	return max(1, 8192/m.Context)
}

// writeCacheEntry stores the model of ctx and meta (as meta.json) in a
// temporary directory and renames it to dir, so dir is complete or absent.
func writeCacheEntry(root, dir string, ctx *mlctx.Context, key string, meta any) error {
	tmp, err := os.MkdirTemp(root, ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("pretrain cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := SaveModel(filepath.Join(tmp, modelFile), ctx, map[string]string{"prism_pretrained_key": key}); err != nil {
		return err
	}
	data, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, metaFile), append(data, '\n')); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("pretrain cache: %w", err)
	}
	return nil
}

// readTextPretrained loads a cache entry; fs.ErrNotExist when it is absent.
func readTextPretrained(dir string) (*TextPretrained, error) {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var p TextPretrained
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("pretrained cache entry %s: %s: %w (delete the directory to retrain)", dir, metaFile, err)
	}
	p.Dir, p.ModelPath, p.Cached = dir, filepath.Join(dir, modelFile), true
	if _, err := os.Stat(p.ModelPath); err != nil {
		return nil, fmt.Errorf("pretrained cache entry %s: %w (delete the directory to retrain)", dir, err)
	}
	return &p, nil
}
