package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prism-lora/prism/core/backend"
	"github.com/prism-lora/prism/datasets"
)

// SchemaVersion versions what the training code computes. It is part of
// every cache key and run fingerprint: a change that alters results (the
// loss, the optimiser, the data order, an initialisation) must bump it so
// old checkpoints are never mistaken for new ones.
const SchemaVersion = 1

// CacheEnvVar names the variable that moves the cache directory.
const CacheEnvVar = "PRISM_CACHE_DIR"

// DefaultCacheDir is $PRISM_CACHE_DIR, else ~/.cache/prism.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheEnvVar); d != "" {
		return d, nil
	}
	home, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set $%s (%w)", CacheEnvVar, err)
	}
	return filepath.Join(home, "prism"), nil
}

// Options are how a run is carried out; nothing here changes its result.
type Options struct {
	// Backend is the GoMLX backend spec (core/backend.New): "" means
	// $PRISM_BACKEND, else the pure-Go backend.
	Backend string
	// CacheDir holds pretrained checkpoints (CacheDir/pretrained/KEY/) and
	// the checkpoints of running fine-tunes (CacheDir/runs/FINGERPRINT/);
	// "" means DefaultCacheDir().
	CacheDir string
	// Open loads datasets by name; nil means the catalog's default store.
	Open OpenDataset
	// Callbacks receive progress; with none, a progress bar is drawn on
	// stderr when it is a terminal (and Quiet is false).
	Callbacks Callbacks
	Quiet     bool
	// CheckpointEvery saves the training state every this many steps, and
	// at the end of every epoch; 0 means DefaultCheckpointEvery, < 0 means
	// at the ends of epochs only.
	CheckpointEvery int
	// EvalBatch is the batch size of evaluations; 0 means 500.
	EvalBatch int
	// TracePerEpoch asks fine-tuning for that many points per epoch of the
	// training loss and accuracy (Result.Trace; 0: none). It does not change
	// what is trained.
	TracePerEpoch int

	// afterStep is a test hook called after every training step.
	afterStep func(phase string, step int)
}

// DefaultCheckpointEvery is the default step interval of checkpoints.
const DefaultCheckpointEvery = 200

func (o Options) cacheDir() (string, error) {
	if o.CacheDir != "" {
		return o.CacheDir, nil
	}
	return DefaultCacheDir()
}

func (o Options) open(ctx context.Context, name string) (datasets.InMemory, error) {
	if o.Open != nil {
		return o.Open(ctx, name)
	}
	return openCatalog(ctx, name)
}

func (o Options) every() int {
	switch {
	case o.CheckpointEvery == 0:
		return DefaultCheckpointEvery
	case o.CheckpointEvery < 0:
		return 0
	}
	return o.CheckpointEvery
}

func (o Options) evalBatch() int {
	if o.EvalBatch > 0 {
		return o.EvalBatch
	}
	return 500
}

func (o Options) newBackend() (backends.Backend, error) { return backend.New(o.Backend) }

// PretrainConfig says how to pretrain a network on task A. Everything in it
// is part of the cache key.
type PretrainConfig struct {
	Network Network `json:"-"` // encoded through its Kind and Config
	// Task is the dataset of task A, e.g. "mnist".
	Task  string `json:"task"`
	Hyper Hyper  `json:"hyper"`
	// TrainSubset and TestSubset restrict the splits to their first N
	// examples of a fixed permutation (quick modes); 0 means all.
	TrainSubset int `json:"train_subset,omitempty"`
	TestSubset  int `json:"test_subset,omitempty"`
	// Model, when set, is a prism model directory (`prism import hf-vit`)
	// that is the pretrained model: Pretrain loads it instead of training
	// (see ImportedViTNetwork). Its weights' hash, not its path, is part of
	// the key.
	Model string `json:"-"`
}

// Pretrained is a pretrained checkpoint in the cache.
type Pretrained struct {
	// Key is the content address: hex SHA-256 of the schema version, the
	// network's kind and config, the dataset's checksum and the training
	// configuration.
	Key string `json:"key"`
	// Dir is the cache entry; ModelPath its weights (SaveModel's format).
	Dir       string `json:"-"`
	ModelPath string `json:"-"`
	// Task, Classes and Checksum describe task A's data.
	Task     string `json:"task"`
	Classes  int    `json:"classes"`
	Checksum string `json:"checksum"`
	// TestAccuracy is task A's test accuracy (%, on the test subset).
	TestAccuracy float64      `json:"test_acc"`
	Curves       []EpochStats `json:"curves"`
	// Seconds is the training wall time when the checkpoint was made.
	Seconds float64         `json:"seconds"`
	Config  json.RawMessage `json:"config"` // what was hashed
	// Imported reports a model read from PretrainConfig.Model (not trained
	// here; TestAccuracy and Curves are not measured).
	Imported bool `json:"imported,omitempty"`
	// Cached reports that this call found the checkpoint in the cache.
	Cached  bool    `json:"-"`
	Network Network `json:"-"`
}

// Load sets the pretrained variables in ctx's model scope (see LoadModel).
func (p *Pretrained) Load(ctx *mlctx.Context) error {
	_, err := LoadModel(p.ModelPath, ctx)
	return err
}

// Files inside a pretrained cache entry.
const (
	modelFile = "model.safetensors"
	metaFile  = "meta.json"
)

// dataChecksum identifies a dataset's examples: its Spec's checksum, or a
// SHA-256 over its arrays when the Spec has none.
func dataChecksum(d datasets.InMemory) (string, error) {
	spec := d.Spec()
	if spec.Checksum != "" {
		return spec.Checksum, nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "prism-data\n%s\n%v\n", spec.Name, spec.ExampleShape)
	for _, sp := range spec.Splits {
		a, err := d.Arrays(sp.Name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", sp.Name, a.Size)
		buf := make([]byte, 4)
		for _, x := range a.Inputs {
			binary.LittleEndian.PutUint32(buf, math.Float32bits(x))
			h.Write(buf)
		}
		for _, y := range a.Labels {
			binary.LittleEndian.PutUint32(buf, uint32(y))
			h.Write(buf)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashJSON is hex SHA-256 of a tag line and v's JSON encoding.
func hashJSON(tag string, v any) (string, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", nil, err
	}
	h := sha256.New()
	h.Write([]byte(tag + "\n"))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), b, nil
}

// pretrainKey returns the cache key and the hashed configuration.
func pretrainKey(cfg PretrainConfig, checksum string) (string, []byte, error) {
	net, err := cfg.Network.configJSON()
	if err != nil {
		return "", nil, err
	}
	return hashJSON("prism-pretrain", struct {
		Schema   int             `json:"schema"`
		Network  json.RawMessage `json:"network"`
		Checksum string          `json:"data_checksum"`
		Config   PretrainConfig  `json:"config"`
	}{SchemaVersion, net, checksum, cfg})
}

// Pretrain returns the network pretrained on cfg.Task, from the cache when a
// checkpoint with the same key is there, else by training it (resuming from
// the entry's partial checkpoint when an earlier attempt was interrupted) and
// storing it. Concurrent calls with the same key train once: the others wait
// on the entry's lock file and then load the result.
func Pretrain(goctx context.Context, cfg PretrainConfig, o Options) (*Pretrained, error) {
	if err := cfg.Network.Validate(); err != nil {
		return nil, err
	}
	if cfg.Task == "" {
		return nil, fmt.Errorf("pretrain: no task (dataset name)")
	}
	if cfg.Model != "" {
		return importedPretrained(goctx, cfg, o)
	}
	if err := cfg.Hyper.Validate(); err != nil {
		return nil, fmt.Errorf("pretrain: %w", err)
	}
	data, err := o.open(goctx, cfg.Task)
	if err != nil {
		return nil, err
	}
	checksum, err := dataChecksum(data)
	if err != nil {
		return nil, err
	}
	key, hashed, err := pretrainKey(cfg, checksum)
	if err != nil {
		return nil, err
	}
	dir, err := o.pretrainedEntry(key)
	if err != nil {
		return nil, err
	}
	rep := newReporter(o.Callbacks, o.Quiet)
	if p, err := readPretrained(dir, cfg.Network); err == nil {
		rep.logf("pretrained %s on %s: cached (%s, test acc %.2f%%)", cfg.Network.Kind, cfg.Task, dir, p.TestAccuracy)
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	lock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	// Another process may have finished it while we waited.
	if p, err := readPretrained(dir, cfg.Network); err == nil {
		rep.logf("pretrained %s on %s: cached (%s)", cfg.Network.Kind, cfg.Task, dir)
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	spec := data.Spec()
	trainSet, err := loadSplit(data, datasets.Train, cfg.TrainSubset, cfg.Network.InputShape)
	if err != nil {
		return nil, err
	}
	testSet, err := loadSplit(data, datasets.Test, cfg.TestSubset, cfg.Network.InputShape)
	if err != nil {
		return nil, err
	}
	b, err := o.newBackend()
	if err != nil {
		return nil, err
	}
	ctx := mlctx.New()
	cfg.Network.Seed(ctx.In(ModelScope), int64(cfg.Hyper.Seed))
	partial := dir + ".partial"
	l := &loop{
		phase: "pretrain", backend: b, ctx: ctx, net: cfg.Network, linear: cfg.Network.plain(),
		head: HeadA, classes: spec.NumClasses(), train: trainSet,
		evals:      []evalSpec{{key: "test_acc", head: HeadA, classes: spec.NumClasses(), data: testSet}},
		hyper:      cfg.Hyper,
		checkpoint: filepath.Join(partial, "state.safetensors"), every: o.every(), fingerprint: key,
		report: rep, evalBatch: o.evalBatch(),
	}
	if o.afterStep != nil {
		l.afterStep = func(step int) { o.afterStep("pretrain", step) }
	}
	rep.logf("pretraining %s on %s (%d examples, %s) → %s", cfg.Network.Kind, cfg.Task, trainSet.Len(), epochsText(cfg.Hyper.Epochs), dir)
	curves, took, err := l.run(goctx)
	if err != nil {
		return nil, err
	}
	p := &Pretrained{
		Key: key, Task: cfg.Task, Classes: spec.NumClasses(), Checksum: checksum,
		TestAccuracy: curves[len(curves)-1].Eval["test_acc"], Curves: curves, Seconds: took.Seconds(), Config: hashed,
	}
	if err := writePretrained(filepath.Dir(dir), dir, ctx, p); err != nil {
		return nil, err
	}
	os.RemoveAll(partial)
	p.Dir, p.ModelPath, p.Network = dir, filepath.Join(dir, modelFile), cfg.Network
	return p, nil
}

// writePretrained stores the model and its meta.json in a temporary
// directory and renames it to dir, so dir is complete or absent.
func writePretrained(root, dir string, ctx *mlctx.Context, p *Pretrained) error {
	tmp, err := os.MkdirTemp(root, ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("pretrain cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := SaveModel(filepath.Join(tmp, modelFile), ctx, map[string]string{"prism_pretrained_key": p.Key}); err != nil {
		return err
	}
	meta, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, metaFile), append(meta, '\n')); err != nil {
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

// readPretrained loads a cache entry's meta.json; fs.ErrNotExist when the
// entry is absent.
func readPretrained(dir string, net Network) (*Pretrained, error) {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var p Pretrained
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("pretrained cache entry %s: %s: %w (delete the directory to retrain)", dir, metaFile, err)
	}
	p.Dir, p.ModelPath, p.Network, p.Cached = dir, filepath.Join(dir, modelFile), net, true
	if _, err := os.Stat(p.ModelPath); err != nil {
		return nil, fmt.Errorf("pretrained cache entry %s: %w (delete the directory to retrain)", dir, err)
	}
	return &p, nil
}

// writeFileSync writes data to path and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pretrainedEntry is the cache directory of the pretrained model with key,
// CacheDir/pretrained/KEY (the classifiers' and the language models' alike);
// it creates CacheDir/pretrained.
func (o Options) pretrainedEntry(key string) (string, error) {
	cache, err := o.cacheDir()
	if err != nil {
		return "", err
	}
	root := filepath.Join(cache, "pretrained")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("pretrain cache: %w", err)
	}
	return filepath.Join(root, key), nil
}
