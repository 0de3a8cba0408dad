// Package slurm runs a sweep as Slurm job arrays: one array task per run.
//
// Only the controller (the process running `prism sweep --executor slurm`)
// touches the SQLite database, which should be on its local disk. Tasks
// communicate through files in a shared directory (it must be visible from
// the compute nodes):
//
//	DIR/runs/ID/config.json      the run's configuration (written at submission)
//	DIR/runs/ID/result.json      its RunRecord, written atomically by the task
//	DIR/jobs/STAMP/manifest.json the runs of one array, in task order
//	DIR/jobs/STAMP/job.sbatch    the batch script submitted
//	DIR/jobs/STAMP/logs/J_T.out  each task's output
//
// Each task runs `prism sweep-task --dir DIR --manifest … --index
// $SLURM_ARRAY_TASK_ID` (RunTask). The controller polls `squeue -r -t all
// -j JOB` (no accounting database or sacct is needed), ingests result files
// into the store as they appear (exactly once: the store never rewrites a
// done run), and records a task that ended without a result file as a
// failed run whose reason names the Slurm state and the end of its log.
// Submitting again skips runs that are done and runs whose tasks are still
// queued or running.
package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
)

// Options configure submission and waiting.
type Options struct {
	// Dir is the shared directory (see the package comment).
	Dir string
	// Prism is the binary the tasks run (an absolute path valid on the
	// compute nodes).
	Prism string
	// Settings are the sbatch options from the spec.
	Settings experiment.SlurmSpec
	// SkipFailed leaves runs recorded as failed alone.
	SkipFailed bool
	// Out receives progress lines; nil discards them.
	Out io.Writer
	// Poll is the time between two squeue polls while waiting (default 5 s).
	Poll time.Duration
	// Grace is how long a task Slurm reports COMPLETED may take to show its
	// result file (slow network file systems) before it counts as failed
	// (default 60 s).
	Grace time.Duration
	// MaxArraySize splits larger submissions into several arrays (default
	// 1000, below Slurm's default MaxArraySize of 1001).
	MaxArraySize int
}

func (o *Options) defaults() {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 60 * time.Second
	}
	if o.MaxArraySize <= 0 {
		o.MaxArraySize = 1000
	}
}

// Manifest lists the runs of one array in task order.
type Manifest struct {
	Spec string   `json:"spec"`
	Runs []string `json:"runs"`
}

// configFile is DIR/runs/ID/config.json.
type configFile struct {
	ID     string               `json:"id"`
	Config experiment.RunConfig `json:"config"`
}

func runDir(dir, id string) string     { return filepath.Join(dir, "runs", id) }
func resultPath(dir, id string) string { return filepath.Join(runDir(dir, id), "result.json") }
func configPath(dir, id string) string { return filepath.Join(runDir(dir, id), "config.json") }

// Submission is what Submit did.
type Submission struct {
	JobIDs   []string // the arrays submitted (none when nothing was left to run)
	Runs     int      // runs submitted
	Finished int      // runs of the spec already finished
	InFlight int      // runs already queued or running in earlier arrays
	Ingested int      // results ingested before submitting
}

// Submit registers the spec's runs, ingests any finished tasks, and submits
// one array task per run that is neither finished nor already in flight.
func Submit(ctx context.Context, st *store.Store, spec *experiment.Spec, runs []experiment.Run, opt Options) (Submission, error) {
	opt.defaults()
	var sub Submission
	if opt.Dir == "" || !filepath.IsAbs(opt.Dir) {
		return sub, fmt.Errorf("slurm: shared directory %q: expected an absolute path visible from the compute nodes", opt.Dir)
	}
	if opt.Prism == "" || !filepath.IsAbs(opt.Prism) {
		return sub, fmt.Errorf("slurm: prism binary %q: expected an absolute path valid on the compute nodes", opt.Prism)
	}
	if _, err := exec.LookPath("sbatch"); err != nil {
		return sub, fmt.Errorf("slurm: sbatch not found on PATH: run this on a Slurm login node (or install Slurm: scripts/setup.sh slurm)")
	}
	if err := st.AddRuns(ctx, spec, runs); err != nil {
		return sub, err
	}
	p := &poller{st: st, spec: spec.Name, opt: opt, firstSeen: map[string]time.Time{}}
	n, err := p.pass(ctx, true)
	if err != nil {
		return sub, err
	}
	sub.Ingested = n
	open, err := st.OpenSlurmTasks(ctx, spec.Name)
	if err != nil {
		return sub, err
	}
	inFlight := map[string]bool{}
	for _, t := range open {
		inFlight[t.RunID] = true
	}
	pending, err := runner.Pending(ctx, st, runs, opt.SkipFailed)
	if err != nil {
		return sub, err
	}
	var todo []experiment.Run
	for _, r := range pending {
		if inFlight[r.ID] {
			sub.InFlight++
			continue
		}
		todo = append(todo, r)
	}
	sub.Finished = len(runs) - len(pending)
	if len(todo) == 0 {
		return sub, nil
	}
	for _, r := range todo {
		if err := os.MkdirAll(runDir(opt.Dir, r.ID), 0o755); err != nil {
			return sub, fmt.Errorf("slurm: %w", err)
		}
		data, err := json.MarshalIndent(configFile{ID: r.ID, Config: r.Config}, "", " ")
		if err != nil {
			return sub, err
		}
		if err := experiment.WriteFileAtomic(configPath(opt.Dir, r.ID), append(data, '\n')); err != nil {
			return sub, err
		}
		// A result left by an earlier, failed attempt was ingested above;
		// remove it so it is not mistaken for this attempt's.
		if err := os.Remove(resultPath(opt.Dir, r.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return sub, fmt.Errorf("slurm: %w", err)
		}
	}
	stamp := time.Now().UTC().Format("20060102T150405.000000000Z")
	for chunk := 0; chunk*opt.MaxArraySize < len(todo); chunk++ {
		part := todo[chunk*opt.MaxArraySize : min((chunk+1)*opt.MaxArraySize, len(todo))]
		jobDir := filepath.Join(opt.Dir, "jobs", fmt.Sprintf("%s-%d", stamp, chunk))
		if err := os.MkdirAll(filepath.Join(jobDir, "logs"), 0o755); err != nil {
			return sub, fmt.Errorf("slurm: %w", err)
		}
		m := Manifest{Spec: spec.Name}
		for _, r := range part {
			m.Runs = append(m.Runs, r.ID)
		}
		data, _ := json.MarshalIndent(m, "", " ")
		manifest := filepath.Join(jobDir, "manifest.json")
		if err := experiment.WriteFileAtomic(manifest, append(data, '\n')); err != nil {
			return sub, err
		}
		script := Script(spec.Name, len(part), opt.Prism, opt.Dir, manifest, filepath.Join(jobDir, "logs"), opt.Settings)
		scriptPath := filepath.Join(jobDir, "job.sbatch")
		if err := experiment.WriteFileAtomic(scriptPath, []byte(script)); err != nil {
			return sub, err
		}
		out, err := exec.CommandContext(ctx, "sbatch", "--parsable", scriptPath).CombinedOutput()
		if err != nil {
			return sub, fmt.Errorf("slurm: sbatch %s: %v: %s", scriptPath, err, strings.TrimSpace(string(out)))
		}
		jobID, err := parseSbatch(string(out))
		if err != nil {
			return sub, fmt.Errorf("slurm: sbatch %s: %w", scriptPath, err)
		}
		if err := st.AddSlurmTasks(ctx, jobID, spec.Name, jobDir, m.Runs); err != nil {
			return sub, fmt.Errorf("%w (array %s is submitted; cancel it with scancel %s if this sweep is abandoned)", err, jobID, jobID)
		}
		fmt.Fprintf(opt.Out, "submitted Slurm array %s: %d tasks (%s)\n", jobID, len(part), jobDir)
		sub.JobIDs = append(sub.JobIDs, jobID)
		sub.Runs += len(part)
	}
	return sub, nil
}

// parseSbatch reads `sbatch --parsable` output: "JOBID" or "JOBID;CLUSTER".
func parseSbatch(out string) (string, error) {
	line := strings.TrimSpace(out)
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = strings.TrimSpace(line[i+1:])
	}
	id, _, _ := strings.Cut(line, ";")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil || id == "" {
		return "", fmt.Errorf("unexpected sbatch output %q, expected a job ID", out)
	}
	return id, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Script is the sbatch script of an array of n tasks.
func Script(spec string, n int, prism, dir, manifest, logDir string, s experiment.SlurmSpec) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	b.WriteString("# Submitted by prism sweep --executor slurm; one task per run of the manifest.\n")
	array := fmt.Sprintf("0-%d", n-1)
	if s.MaxParallel > 0 {
		array += fmt.Sprintf("%%%d", s.MaxParallel)
	}
	opts := []string{
		"--job-name=prism-" + spec,
		"--array=" + array,
		"--output=" + filepath.Join(logDir, "%A_%a.out"),
	}
	if s.Partition != "" {
		opts = append(opts, "--partition="+s.Partition)
	}
	if s.Time != "" {
		opts = append(opts, "--time="+s.Time)
	}
	if s.CPUsPerTask > 0 {
		opts = append(opts, fmt.Sprintf("--cpus-per-task=%d", s.CPUsPerTask))
	}
	if s.Mem != "" {
		opts = append(opts, "--mem="+s.Mem)
	}
	if s.GPUs > 0 {
		opts = append(opts, fmt.Sprintf("--gres=gpu:%d", s.GPUs))
	}
	opts = append(opts, s.ExtraArgs...)
	for _, o := range opts {
		fmt.Fprintf(&b, "#SBATCH %s\n", o)
	}
	fmt.Fprintf(&b, "exec %s sweep-task --dir %s --manifest %s --index \"$SLURM_ARRAY_TASK_ID\"\n",
		shellQuote(prism), shellQuote(dir), shellQuote(manifest))
	return b.String()
}

// activeStates are the Slurm job states of a task that has not ended.
var activeStates = map[string]bool{
	"PENDING": true, "RUNNING": true, "SUSPENDED": true, "COMPLETING": true, "CONFIGURING": true,
	"REQUEUED": true, "REQUEUE_FED": true, "REQUEUE_HOLD": true, "RESIZING": true, "SIGNALING": true,
	"STAGE_OUT": true, "STOPPED": true, "SUBMITTED": true,
}

// Active reports whether a Slurm state is one of a task that has not ended.
func Active(state string) bool { return activeStates[state] }

// queryStates returns the state of every task of a job that Slurm still
// knows, key "JOB_TASK". A job Slurm has forgotten (ended more than MinJobAge
// ago) gives an empty map.
func queryStates(ctx context.Context, jobID string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "squeue", "-h", "-r", "-t", "all", "-j", jobID, "-o", "%i|%T").CombinedOutput()
	text := string(out)
	if err != nil {
		if strings.Contains(text, "Invalid job id") {
			return map[string]string{}, nil
		}
		// Fall back to scontrol, which reads the same controller state.
		out2, err2 := exec.CommandContext(ctx, "scontrol", "-o", "show", "job", jobID).CombinedOutput()
		if err2 != nil {
			if strings.Contains(string(out2), "Invalid job id") {
				return map[string]string{}, nil
			}
			return nil, fmt.Errorf("slurm: squeue -j %s: %v: %s", jobID, err, strings.TrimSpace(text))
		}
		return parseScontrol(string(out2)), nil
	}
	return parseSqueue(text), nil
}

// parseSqueue reads `squeue -h -r -o %i|%T` lines ("12_3|RUNNING").
func parseSqueue(text string) map[string]string {
	states := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		id, state, ok := strings.Cut(strings.TrimSpace(line), "|")
		if !ok || !strings.Contains(id, "_") || strings.Contains(id, "[") {
			continue
		}
		states[id] = strings.TrimSpace(state)
	}
	return states
}

// parseScontrol reads `scontrol -o show job` records (one per task).
func parseScontrol(text string) map[string]string {
	states := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		job, task, state := fields["ArrayJobId"], fields["ArrayTaskId"], fields["JobState"]
		if job == "" || task == "" || state == "" || strings.ContainsAny(task, "[-,%") {
			continue
		}
		states[job+"_"+task] = state
	}
	return states
}

// poller follows a spec's open tasks.
type poller struct {
	st        *store.Store
	spec      string
	opt       Options
	firstSeen map[string]time.Time // task key → when first seen ended without a result
}

// pass looks at every open task once: ingests result files, updates states,
// and records tasks that ended without a result as failed runs. once makes
// COMPLETED-without-result tasks wait for the grace period only when it can
// be measured (while waiting); it returns the number of runs recorded.
func (p *poller) pass(ctx context.Context, once bool) (int, error) {
	open, err := p.st.OpenSlurmTasks(ctx, p.spec)
	if err != nil {
		return 0, err
	}
	byJob := map[string]map[string]string{}
	for _, t := range open {
		if _, ok := byJob[t.JobID]; ok {
			continue
		}
		states, err := queryStates(ctx, t.JobID)
		if err != nil {
			return 0, err
		}
		byJob[t.JobID] = states
	}
	updates := map[string]store.TaskState{}
	recorded := 0
	for _, t := range open {
		key := t.Key()
		state, known := byJob[t.JobID][key]
		if !known {
			state = "GONE"
		}
		res := resultPath(p.opt.Dir, t.RunID)
		if _, err := os.Stat(res); err == nil {
			rec, err := experiment.ReadRecordFile(res)
			if err != nil || rec.ID != t.RunID {
				if err == nil {
					err = fmt.Errorf("holds run %s", experiment.ShortID(rec.ID))
				}
				if Active(state) {
					continue // perhaps still being replaced; look again later
				}
				if err := p.fail(ctx, t, state, fmt.Sprintf("unreadable result file %s: %v", res, err)); err != nil {
					return recorded, err
				}
			} else if err := p.st.Record(ctx, rec); err != nil && !errors.Is(err, store.ErrAlreadyDone) {
				return recorded, err
			}
			recorded++
			if !known {
				state = "COMPLETED"
			}
			updates[key] = store.TaskState{State: state, Ended: true}
			continue
		}
		if Active(state) {
			if state != t.State {
				updates[key] = store.TaskState{State: state}
			}
			continue
		}
		if state == "COMPLETED" {
			first, seen := p.firstSeen[key]
			if !seen {
				p.firstSeen[key] = time.Now()
				first = time.Now()
			}
			if once || time.Since(first) < p.opt.Grace {
				if state != t.State {
					updates[key] = store.TaskState{State: state}
				}
				continue // the result file may not be visible yet
			}
		}
		if err := p.fail(ctx, t, state, ""); err != nil {
			return recorded, err
		}
		recorded++
		updates[key] = store.TaskState{State: state, Ended: true}
	}
	return recorded, p.st.SetSlurmTaskStates(ctx, updates)
}

// fail records the task's run as failed, with the Slurm state and the end of
// the task's log as the reason.
func (p *poller) fail(ctx context.Context, t store.SlurmTask, state, why string) error {
	cfg, err := p.st.Config(ctx, t.RunID)
	if err != nil {
		return err
	}
	reason := why
	if reason == "" {
		reason = fmt.Sprintf("Slurm task %s ended (%s) without writing a result", t.Key(), state)
		if state == "GONE" {
			reason = fmt.Sprintf("Slurm task %s is gone from the queue without writing a result", t.Key())
		}
	}
	log := filepath.Join(t.Dir, "logs", t.Key()+".out")
	if tail := tailFile(log, 10); tail != "" {
		reason += "; end of " + log + ":\n" + tail
	}
	rec := experiment.RunRecord{
		ID: t.RunID, Config: cfg, Status: experiment.StatusFailed, Error: reason,
		Executor: "slurm " + t.Key(), Finished: time.Now().UTC(),
	}
	if err := p.st.Record(ctx, rec); err != nil && !errors.Is(err, store.ErrAlreadyDone) {
		return err
	}
	fmt.Fprintf(p.opt.Out, "FAILED %s %s: %s\n", experiment.ShortID(t.RunID), cfg.Label(), firstLine(reason))
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// tailFile returns the last n lines of a file ("" if unreadable).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	const max = 8192
	off := max64(0, st.Size()-max)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// WaitSummary is the outcome of Wait.
type WaitSummary struct {
	Done, Failed int // runs of the spec, at the end
	Total        int
	Elapsed      time.Duration
}

// Wait follows the spec's open tasks until all have ended, ingesting results
// as they appear, and reports how the spec's runs stand. Transient squeue
// failures are retried for up to 5 minutes.
func Wait(ctx context.Context, st *store.Store, spec *experiment.Spec, runs []experiment.Run, opt Options) (WaitSummary, error) {
	opt.defaults()
	start := time.Now()
	p := &poller{st: st, spec: spec.Name, opt: opt, firstSeen: map[string]time.Time{}}
	var lastLine string
	var failingSince time.Time
	for {
		_, err := p.pass(ctx, false)
		if err != nil {
			if ctx.Err() != nil {
				return WaitSummary{}, ctx.Err()
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > 5*time.Minute {
				return WaitSummary{}, err
			}
			fmt.Fprintf(opt.Out, "warning: %v (retrying)\n", err)
		} else {
			failingSince = time.Time{}
		}
		open, err := st.OpenSlurmTasks(ctx, spec.Name)
		if err != nil {
			return WaitSummary{}, err
		}
		sum, err := summarize(ctx, st, runs)
		if err != nil {
			return WaitSummary{}, err
		}
		sum.Elapsed = time.Since(start)
		counts := map[string]int{}
		for _, t := range open {
			counts[t.State]++
		}
		line := fmt.Sprintf("[%d/%d] %d failed · Slurm: %s", sum.Done+sum.Failed, sum.Total, sum.Failed, describeStates(counts))
		if line != lastLine {
			fmt.Fprintf(opt.Out, "%s · elapsed %s\n", line, sum.Elapsed.Round(time.Second))
			lastLine = line
		}
		if len(open) == 0 {
			return sum, nil
		}
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-time.After(opt.Poll):
		}
	}
}

func describeStates(counts map[string]int) string {
	if len(counts) == 0 {
		return "no tasks left"
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", counts[k], strings.ToLower(k))
	}
	return strings.Join(parts, ", ")
}

func summarize(ctx context.Context, st *store.Store, runs []experiment.Run) (WaitSummary, error) {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	status, err := st.Statuses(ctx, ids)
	if err != nil {
		return WaitSummary{}, err
	}
	s := WaitSummary{Total: len(runs)}
	for _, id := range ids {
		switch status[id] {
		case experiment.StatusDone:
			s.Done++
		case experiment.StatusFailed:
			s.Failed++
		}
	}
	return s, nil
}

// TaskFailed is returned by RunTask when the run failed (its record, with
// the reason, was written): the task's exit status is then non-zero so
// Slurm shows it as FAILED.
type TaskFailed struct{ Reason string }

func (e *TaskFailed) Error() string { return "run failed: " + e.Reason }

// ExitCode makes the task exit with status 3.
func (e *TaskFailed) ExitCode() int { return 3 }

// RunTask executes the index-th run of a manifest and writes its record to
// DIR/runs/ID/result.json. A run that already has a done result is not run
// again (a requeued task). Progress goes to out (the task's log).
func RunTask(ctx context.Context, kinds *experiment.Registry, dir, manifestPath string, index int, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		return fmt.Errorf("sweep-task: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("sweep-task: manifest %s: %w", manifestPath, err)
	}
	if index < 0 || index >= len(m.Runs) {
		return fmt.Errorf("sweep-task: index %d outside the manifest's %d runs (%s)", index, len(m.Runs), manifestPath)
	}
	id := m.Runs[index]
	data, err = os.ReadFile(configPath(dir, id))
	if err != nil {
		return fmt.Errorf("sweep-task: %w", err)
	}
	var cf configFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return fmt.Errorf("sweep-task: %s: %w", configPath(dir, id), err)
	}
	if got := cf.Config.MustID(); got != id || cf.ID != id {
		return fmt.Errorf("sweep-task: %s: configuration hashes to %s, expected %s", configPath(dir, id), experiment.ShortID(got), experiment.ShortID(id))
	}
	if rec, err := experiment.ReadRecordFile(resultPath(dir, id)); err == nil && rec.Status == experiment.StatusDone {
		fmt.Fprintf(out, "run %s already has a result; nothing to do\n", experiment.ShortID(id))
		return nil
	}
	kind, err := kinds.Lookup(cf.Config.Kind)
	if err != nil {
		return fmt.Errorf("sweep-task: %w", err)
	}
	task := os.Getenv("SLURM_ARRAY_JOB_ID") + "_" + os.Getenv("SLURM_ARRAY_TASK_ID")
	fmt.Fprintf(out, "run %s (%s) as Slurm task %s on %s\n", id, cf.Config.Label(), task, runner.Hostname())
	var last time.Time
	prog := experiment.ProgressFunc(func(done, total int, status string) {
		if time.Since(last) >= 5*time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(out, "%s %d/%d %s\n", time.Now().Format("15:04:05"), done, total, status)
		}
	})
	rec, err := runner.Execute(ctx, kind, experiment.Run{ID: id, Config: cf.Config}, prog, runner.Hostname(), "slurm "+task)
	if err != nil {
		return fmt.Errorf("sweep-task: run %s interrupted: %w", experiment.ShortID(id), err)
	}
	if err := experiment.WriteRecordFile(resultPath(dir, id), rec); err != nil {
		return fmt.Errorf("sweep-task: %w", err)
	}
	if rec.Status == experiment.StatusFailed {
		fmt.Fprintf(out, "run %s failed: %s\n", experiment.ShortID(id), rec.Error)
		return &TaskFailed{Reason: firstLine(rec.Error)}
	}
	fmt.Fprintf(out, "run %s done in %s\n", experiment.ShortID(id), rec.Finished.Sub(rec.Started).Round(time.Millisecond))
	return nil
}
