package experiment

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Spec is an experiment specification file (YAML). Every key is checked:
// unknown keys and wrong types are errors naming the file, line and field.
//
//	name: fig1-quick                 # required: letters, digits, . _ -
//	kind: finetune                   # registered run kind (default "finetune")
//	description: window sweep        # free text
//	model:
//	  name: vit                      # required
//	  params: {patch: 7, width: 64}  # free-form, checked by the run kind
//	pretrain:                        # task A (optional for kinds that need none)
//	  task: mnist
//	  epochs: 3
//	  learning_rate: 1e-3
//	  batch_size: 128
//	  seed: 0
//	  params: {}
//	finetune:                        # task B, or a sequence with `tasks:`
//	  task: fashion-mnist
//	  batch_size: 128
//	  params: {warmup_epochs: 0.5}
//	adapter:
//	  targets: ['blocks\.\d+\.attn\.qkv', 'blocks\.\d+\.mlp\.fc1']  # names or regexps
//	  rslora: false
//	  svd: full                      # full | randomized
//	grid:
//	  methods: [lora, pissa, milora, window, full]
//	  window_starts: [0, 8, 16]      # by component index, and/or
//	  window_fractions: [0.25, 0.5]  # by fraction f of the spectrum: s = round(f·(k−r))
//	  ranks: [8]
//	  alphas: [16]                   # default: α = r
//	  learning_rates: [1e-3]
//	  seeds: [0, 1, 2]               # default [0]
//	  epochs: [3]
//	  method_params: {olora: {}}     # fixed per-method hyperparameters
//	  overrides:                     # per-method replacement of grid axes
//	    full: {learning_rates: [1e-4]}
//	output: results/fig1-quick       # default results/<name>; relative to the working directory
//	executor:
//	  kind: local                    # local | slurm
//	  workers: 0                     # 0: sized to the machine
//	  slurm: {partition: gpu, time: "01:00:00", cpus_per_task: 2, mem: 4G}
//
// See Expand for how the grid becomes runs.
type Spec struct {
	Name        string        `yaml:"name"`
	Kind        string        `yaml:"kind"`
	Description string        `yaml:"description"`
	Model       ModelSpec     `yaml:"model"`
	Pretrain    *PretrainSpec `yaml:"pretrain"`
	Finetune    FinetuneSpec  `yaml:"finetune"`
	Adapter     AdapterSpec   `yaml:"adapter"`
	Grid        GridSpec      `yaml:"grid"`
	Output      string        `yaml:"output"`
	Executor    ExecutorSpec  `yaml:"executor"`

	// File is the path the spec was read from; Source its bytes.
	File   string `yaml:"-"`
	Source []byte `yaml:"-"`
	pos    map[string]Position
}

// ModelSpec names the model and its size.
type ModelSpec struct {
	Name   string         `yaml:"name"`
	Params map[string]any `yaml:"params"`
}

// PretrainSpec is how the base model is obtained on task A: trained (and
// cached by content) or read from a checkpoint file.
type PretrainSpec struct {
	Task         string         `yaml:"task"`
	Checkpoint   string         `yaml:"checkpoint"`
	Epochs       int            `yaml:"epochs"`
	LearningRate float64        `yaml:"learning_rate"`
	BatchSize    int            `yaml:"batch_size"`
	Seed         uint64         `yaml:"seed"`
	Params       map[string]any `yaml:"params"`
}

// FinetuneSpec is the new task (or sequence of tasks) and the fixed training
// settings that the grid does not vary.
type FinetuneSpec struct {
	Task      string         `yaml:"task"`
	Tasks     []string       `yaml:"tasks"`
	BatchSize int            `yaml:"batch_size"`
	Params    map[string]any `yaml:"params"`
}

// AdapterSpec says which layers get adapters and how they are initialised.
type AdapterSpec struct {
	Targets []string `yaml:"targets"`
	RSLoRA  bool     `yaml:"rslora"`
	SVD     string   `yaml:"svd"`
}

// GridSpec lists the values of each swept axis (see Expand).
type GridSpec struct {
	Methods         []string                  `yaml:"methods"`
	WindowStarts    []int                     `yaml:"window_starts"`
	WindowFractions []float64                 `yaml:"window_fractions"`
	Ranks           []int                     `yaml:"ranks"`
	Alphas          []float64                 `yaml:"alphas"`
	LearningRates   []float64                 `yaml:"learning_rates"`
	Seeds           []uint64                  `yaml:"seeds"`
	Epochs          []int                     `yaml:"epochs"`
	MethodParams    map[string]map[string]any `yaml:"method_params"`
	Overrides       map[string]GridOverride   `yaml:"overrides"`
}

// GridOverride replaces, for one method, the axes it sets.
type GridOverride struct {
	WindowStarts    []int     `yaml:"window_starts"`
	WindowFractions []float64 `yaml:"window_fractions"`
	Ranks           []int     `yaml:"ranks"`
	Alphas          []float64 `yaml:"alphas"`
	LearningRates   []float64 `yaml:"learning_rates"`
	Seeds           []uint64  `yaml:"seeds"`
	Epochs          []int     `yaml:"epochs"`
}

// ExecutorSpec says where runs execute.
type ExecutorSpec struct {
	Kind    string    `yaml:"kind"`
	Workers int       `yaml:"workers"`
	Slurm   SlurmSpec `yaml:"slurm"`
}

// SlurmSpec holds the sbatch settings of the Slurm executor.
type SlurmSpec struct {
	Partition   string   `yaml:"partition"`
	Time        string   `yaml:"time"`
	CPUsPerTask int      `yaml:"cpus_per_task"`
	Mem         string   `yaml:"mem"`
	GPUs        int      `yaml:"gpus"`
	MaxParallel int      `yaml:"max_parallel"`
	ExtraArgs   []string `yaml:"extra_args"`
	Prism       string   `yaml:"prism"`
	SharedDir   string   `yaml:"shared_dir"`
	Poll        Duration `yaml:"poll"`
}

// DefaultKind is the run kind of a spec without `kind:`.
const DefaultKind = "finetune"

// Pos returns where a field (dotted path, e.g. "grid.ranks[1]") was written;
// for a field that is absent, the nearest enclosing one that is present.
func (s *Spec) Pos(field string) Position {
	for f := field; ; {
		if p, ok := s.pos[f]; ok {
			return p
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return Position{File: s.File, Line: 1, Column: 1}
}

// Errorf returns a SpecError at field's position.
func (s *Spec) Errorf(field, format string, args ...any) *SpecError {
	return &SpecError{Pos: s.Pos(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// LoadSpec reads and validates a spec file. Relative output, checkpoint and
// shared_dir paths are made absolute against the working directory.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiment: reading spec: %w", err)
	}
	s, err := ParseSpec(path, data)
	if err != nil {
		return nil, err
	}
	for _, p := range []*string{&s.Output, &s.Executor.Slurm.SharedDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	if s.Pretrain != nil && s.Pretrain.Checkpoint != "" && !filepath.IsAbs(s.Pretrain.Checkpoint) {
		if abs, err := filepath.Abs(s.Pretrain.Checkpoint); err == nil {
			s.Pretrain.Checkpoint = abs
		}
	}
	return s, nil
}

// ParseSpec parses and validates spec text; file names it in errors. The
// error, if any, is a SpecErrors listing every problem found.
func ParseSpec(file string, data []byte) (*Spec, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if err.Error() == "EOF" {
			return nil, SpecErrors{{Pos: Position{File: file, Line: 1, Column: 1}, Msg: "empty spec: expected a mapping with at least name, model, finetune and grid"}}
		}
		return nil, SpecErrors{{Pos: Position{File: file}, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, SpecErrors{{Pos: Position{File: file, Line: extra.Line, Column: extra.Column}, Msg: "a spec file holds one YAML document; found a second (---)"}}
	}
	s := &Spec{File: file, Source: data}
	d := &decoder{file: file, pos: map[string]Position{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 && root.Content[0].Kind != yaml.MappingNode {
		n := root.Content[0]
		return nil, SpecErrors{{Pos: d.at(n), Msg: "expected a mapping (key: value lines) at the top of the spec, got " + describe(n)}}
	}
	d.decode(&root, reflect.ValueOf(s).Elem(), "")
	s.pos = d.pos
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	s.applyDefaults()
	if errs := s.validate(); len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].Pos.Line != errs[j].Pos.Line {
				return errs[i].Pos.Line < errs[j].Pos.Line
			}
			return errs[i].Pos.Column < errs[j].Pos.Column
		})
		return nil, errs
	}
	return s, nil
}

func (s *Spec) applyDefaults() {
	if s.Kind == "" {
		s.Kind = DefaultKind
	}
	if s.Output == "" && s.Name != "" {
		s.Output = filepath.Join("results", s.Name)
	}
	if s.Executor.Kind == "" {
		s.Executor.Kind = "local"
	}
	if len(s.Grid.Seeds) == 0 {
		s.Grid.Seeds = []uint64{0}
	}
	if s.Adapter.SVD == "" {
		s.Adapter.SVD = "full"
	}
	if s.Executor.Slurm.Poll == 0 {
		s.Executor.Slurm.Poll = Duration(5 * time.Second)
	}
	if s.Finetune.Task != "" && len(s.Finetune.Tasks) == 0 {
		s.Finetune.Tasks = []string{s.Finetune.Task}
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// validate checks meaning (types were checked while decoding).
func (s *Spec) validate() SpecErrors {
	var errs SpecErrors
	bad := func(field, format string, args ...any) { errs = append(errs, s.Errorf(field, format, args...)) }

	if s.Name == "" {
		bad("name", "required: a name for the experiment (letters, digits, '.', '_', '-')")
	} else if !nameRE.MatchString(s.Name) {
		bad("name", "%q: expected letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name)
	}
	if !nameRE.MatchString(s.Kind) {
		bad("kind", "%q: expected the name of a run kind such as %q", s.Kind, DefaultKind)
	}
	if s.Model.Name == "" {
		bad("model.name", "required: the model to fine-tune (e.g. vit, mlp)")
	}
	if p := s.Pretrain; p != nil {
		if p.Task == "" && p.Checkpoint == "" {
			bad("pretrain", "expected a task to pretrain on (pretrain.task) or a checkpoint file (pretrain.checkpoint)")
		}
		if p.Epochs < 0 {
			bad("pretrain.epochs", "expected a positive number of epochs, got %d", p.Epochs)
		}
		if p.LearningRate < 0 {
			bad("pretrain.learning_rate", "expected a positive learning rate, got %v", p.LearningRate)
		}
		if p.BatchSize < 0 {
			bad("pretrain.batch_size", "expected a positive batch size, got %d", p.BatchSize)
		}
	}
	ft := s.Finetune
	_, hasTask := s.pos["finetune.task"]
	_, hasTasks := s.pos["finetune.tasks"]
	switch {
	case hasTask && hasTasks:
		bad("finetune.tasks", "give either finetune.task (one task) or finetune.tasks (a sequence), not both")
	case len(ft.Tasks) == 0:
		bad("finetune", "expected the task to fine-tune on (finetune.task) or a sequence of tasks (finetune.tasks)")
	}
	for i, t := range ft.Tasks {
		if t == "" {
			bad(fmt.Sprintf("finetune.tasks[%d]", i), "expected a task name, got an empty string")
		}
	}
	if ft.BatchSize < 0 {
		bad("finetune.batch_size", "expected a positive batch size, got %d", ft.BatchSize)
	}
	for i, t := range s.Adapter.Targets {
		if t == "" {
			bad(fmt.Sprintf("adapter.targets[%d]", i), "expected a layer name or regular expression, got an empty string")
		} else if _, err := regexp.Compile(t); err != nil {
			bad(fmt.Sprintf("adapter.targets[%d]", i), "%q is not a valid regular expression: %v", t, err)
		}
	}
	if s.Adapter.SVD != "full" && s.Adapter.SVD != "randomized" {
		bad("adapter.svd", "%q: expected full or randomized", s.Adapter.SVD)
	}

	g := s.Grid
	if len(g.Methods) == 0 {
		bad("grid.methods", "required: the methods to compare (%s)", strings.Join(MethodNames(), ", "))
	}
	var anyAdapter, anyWindowed bool
	seenMethod := map[string]bool{}
	for i, m := range g.Methods {
		f := fmt.Sprintf("grid.methods[%d]", i)
		t, ok := LookupMethod(m)
		if !ok {
			msg := fmt.Sprintf("unknown method %q (expected one of: %s)", m, strings.Join(MethodNames(), ", "))
			if c := closest(m, MethodNames()); c != "" {
				msg = fmt.Sprintf("unknown method %q; did you mean %q? (expected one of: %s)", m, c, strings.Join(MethodNames(), ", "))
			}
			bad(f, "%s", msg)
			continue
		}
		if seenMethod[m] {
			bad(f, "method %q listed twice", m)
		}
		seenMethod[m] = true
		anyAdapter = anyAdapter || t.Adapter
		anyWindowed = anyWindowed || t.Windowed
	}
	checkAxes := func(prefix string, o GridOverride, adapter, windowed, required bool) {
		if required && windowed && len(o.WindowStarts)+len(o.WindowFractions) == 0 {
			bad(prefix+"window_starts", "a windowed method (%s) needs window_starts (component indices) and/or window_fractions (0..1)", strings.Join(windowedIn(g.Methods), ", "))
		}
		if !windowed && len(o.WindowStarts)+len(o.WindowFractions) > 0 {
			f := prefix + "window_starts"
			if len(o.WindowStarts) == 0 {
				f = prefix + "window_fractions"
			}
			bad(f, "window starts are given but no method in grid.methods is windowed (windowed: %s)", strings.Join(windowedMethods(), ", "))
		}
		dupCheck(prefix+"window_starts", o.WindowStarts, bad)
		dupCheck(prefix+"window_fractions", o.WindowFractions, bad)
		for i, v := range o.WindowStarts {
			if v < 0 {
				bad(fmt.Sprintf("%swindow_starts[%d]", prefix, i), "expected a component index ≥ 0, got %d", v)
			}
		}
		for i, v := range o.WindowFractions {
			if v < 0 || v > 1 {
				bad(fmt.Sprintf("%swindow_fractions[%d]", prefix, i), "expected a fraction of the spectrum in [0, 1], got %v", v)
			}
		}
		if required && adapter && len(o.Ranks) == 0 {
			bad(prefix+"ranks", "required for adapter methods: the adapter ranks r (e.g. [8])")
		}
		if !adapter && (len(o.Ranks) > 0 || len(o.Alphas) > 0) && prefix != "grid." {
			bad(prefix+"ranks", "this method has no adapter, so ranks and alphas do not apply")
		}
		dupCheck(prefix+"ranks", o.Ranks, bad)
		for i, v := range o.Ranks {
			if v < 1 {
				bad(fmt.Sprintf("%sranks[%d]", prefix, i), "expected a rank ≥ 1, got %d", v)
			}
		}
		dupCheck(prefix+"alphas", o.Alphas, bad)
		for i, v := range o.Alphas {
			if v <= 0 {
				bad(fmt.Sprintf("%salphas[%d]", prefix, i), "expected α > 0, got %v", v)
			}
		}
		if required && len(o.LearningRates) == 0 {
			bad(prefix+"learning_rates", "required: at least one learning rate (e.g. [1e-3])")
		}
		dupCheck(prefix+"learning_rates", o.LearningRates, bad)
		for i, v := range o.LearningRates {
			if v <= 0 {
				bad(fmt.Sprintf("%slearning_rates[%d]", prefix, i), "expected a learning rate > 0, got %v", v)
			}
		}
		dupCheck(prefix+"seeds", o.Seeds, bad)
		if required && len(o.Epochs) == 0 {
			bad(prefix+"epochs", "required: at least one number of fine-tuning epochs (e.g. [3])")
		}
		dupCheck(prefix+"epochs", o.Epochs, bad)
		for i, v := range o.Epochs {
			if v < 1 {
				bad(fmt.Sprintf("%sepochs[%d]", prefix, i), "expected at least 1 epoch, got %d", v)
			}
		}
	}
	if len(g.Methods) > 0 {
		checkAxes("grid.", GridOverride{
			WindowStarts: g.WindowStarts, WindowFractions: g.WindowFractions, Ranks: g.Ranks, Alphas: g.Alphas,
			LearningRates: g.LearningRates, Seeds: g.Seeds, Epochs: g.Epochs,
		}, anyAdapter, anyWindowed, true)
	}
	for _, m := range sortedKeys(g.Overrides) {
		f := "grid.overrides." + m
		if !seenMethod[m] {
			bad(f, "override for %q, which is not in grid.methods", m)
			continue
		}
		t, _ := LookupMethod(m)
		checkAxes(f+".", g.Overrides[m], t.Adapter, t.Windowed, false)
	}
	for _, m := range sortedKeys(g.MethodParams) {
		if !seenMethod[m] {
			bad("grid.method_params."+m, "parameters for %q, which is not in grid.methods", m)
		}
	}

	ex := s.Executor
	if ex.Kind != "local" && ex.Kind != "slurm" {
		bad("executor.kind", "%q: expected local or slurm", ex.Kind)
	}
	if ex.Workers < 0 {
		bad("executor.workers", "expected a number of parallel runs ≥ 0 (0: sized to the machine), got %d", ex.Workers)
	}
	sl := ex.Slurm
	if sl.CPUsPerTask < 0 {
		bad("executor.slurm.cpus_per_task", "expected a positive number of CPUs, got %d", sl.CPUsPerTask)
	}
	if sl.GPUs < 0 {
		bad("executor.slurm.gpus", "expected a number of GPUs ≥ 0, got %d", sl.GPUs)
	}
	if sl.MaxParallel < 0 {
		bad("executor.slurm.max_parallel", "expected a number of tasks ≥ 0 (0: no limit), got %d", sl.MaxParallel)
	}
	if sl.Time != "" && !slurmTimeRE.MatchString(sl.Time) {
		bad("executor.slurm.time", "%q: expected a Slurm time limit such as \"30\" (minutes), \"01:30:00\" or \"1-00:00:00\"", sl.Time)
	}
	if sl.Mem != "" && !slurmMemRE.MatchString(sl.Mem) {
		bad("executor.slurm.mem", "%q: expected a Slurm memory size such as \"4G\" or \"500M\"", sl.Mem)
	}
	for i, a := range sl.ExtraArgs {
		if !strings.HasPrefix(a, "-") {
			bad(fmt.Sprintf("executor.slurm.extra_args[%d]", i), "%q: expected an sbatch option starting with '-' (e.g. --qos=normal)", a)
		}
		if strings.ContainsAny(a, "\n\r") {
			bad(fmt.Sprintf("executor.slurm.extra_args[%d]", i), "an sbatch option cannot contain a line break")
		}
	}
	return errs
}

var (
	slurmTimeRE = regexp.MustCompile(`^(\d+-)?\d+(:\d{1,2}){0,2}$`)
	slurmMemRE  = regexp.MustCompile(`^\d+[KMGT]?$`)
)

func dupCheck[T comparable](field string, vs []T, bad func(string, string, ...any)) {
	seen := map[T]int{}
	for i, v := range vs {
		if j, ok := seen[v]; ok {
			bad(fmt.Sprintf("%s[%d]", field, i), "value %v repeats %s[%d]", v, field, j)
		}
		seen[v] = i
	}
}

func windowedIn(methods []string) []string {
	var out []string
	for _, m := range methods {
		if t, ok := LookupMethod(m); ok && t.Windowed {
			out = append(out, m)
		}
	}
	return out
}
