package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/prism-lora/prism/internal/atomicfile"
)

// Status is a run's state in the results store.
type Status string

// Run states. A run is pending until a worker starts it, running while it
// executes (a crash leaves it running; resumption runs it again), then done or
// failed.
const (
	StatusPending Status = "pending"
	StatusRunning Status = "running"
	StatusDone    Status = "done"
	StatusFailed  Status = "failed"
)

// RunRecord is a finished run: what the local runner stores, and what a Slurm
// task writes to its per-run file for the controller to ingest.
type RunRecord struct {
	ID       string    `json:"id"`
	Config   RunConfig `json:"config"`
	Status   Status    `json:"status"` // done or failed
	Error    string    `json:"error,omitempty"`
	Result   Result    `json:"result"`
	Host     string    `json:"host"`
	Executor string    `json:"executor"` // "local", "slurm 1234_5", …
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// Check verifies a record: finished status, a known schema, an ID that is the
// hash of its configuration, and a well-formed result.
func (r RunRecord) Check() error {
	if r.Status != StatusDone && r.Status != StatusFailed {
		return fmt.Errorf("run %s: status %q, expected done or failed", ShortID(r.ID), r.Status)
	}
	if r.Config.Schema != RunSchema {
		return fmt.Errorf("run %s: configuration schema %d, expected %d", ShortID(r.ID), r.Config.Schema, RunSchema)
	}
	id, err := r.Config.ID()
	if err != nil {
		return fmt.Errorf("run %s: %w", ShortID(r.ID), err)
	}
	if id != r.ID {
		return fmt.Errorf("run %s: ID does not match its configuration (which hashes to %s)", ShortID(r.ID), ShortID(id))
	}
	if r.Status == StatusFailed && r.Error == "" {
		return fmt.Errorf("run %s: failed without a reason", ShortID(r.ID))
	}
	return r.Result.Check()
}

// WriteRecordFile writes rec as JSON to path atomically: a temporary file in
// the same directory, fsynced, renamed into place, directory fsynced. A
// reader sees either no file or the whole record.
func WriteRecordFile(path string, rec RunRecord) error {
	data, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return fmt.Errorf("experiment: encoding run %s: %w", ShortID(rec.ID), err)
	}
	return WriteFileAtomic(path, append(data, '\n'))
}

// ReadRecordFile reads and checks a record written by WriteRecordFile.
func ReadRecordFile(path string) (RunRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return RunRecord{}, err
	}
	var rec RunRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return RunRecord{}, fmt.Errorf("%s: not a run record: %w", path, err)
	}
	if err := rec.Check(); err != nil {
		return RunRecord{}, fmt.Errorf("%s: %w", path, err)
	}
	return rec, nil
}

// WriteFileAtomic writes data to path atomically: a synced temporary file
// renamed into place, the directory synced (internal/atomicfile).
func WriteFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return nil
}

// jsonFloat encodes NaN and ±Inf as the strings "NaN", "+Inf", "-Inf" (plain
// JSON has no such numbers).
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	switch {
	case math.IsNaN(x):
		return []byte(`"NaN"`), nil
	case math.IsInf(x, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(x, -1):
		return []byte(`"-Inf"`), nil
	}
	return []byte(strconv.FormatFloat(x, 'g', -1, 64)), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = jsonFloat(math.NaN())
		case "+Inf", "Inf":
			*f = jsonFloat(math.Inf(1))
		case "-Inf":
			*f = jsonFloat(math.Inf(-1))
		default:
			return fmt.Errorf("expected a number, NaN, +Inf or -Inf, got %q", s)
		}
		return nil
	}
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("expected a number, got %s", b)
	}
	*f = jsonFloat(x)
	return nil
}

type resultWire struct {
	Metrics   map[string]jsonFloat      `json:"metrics,omitempty"`
	Curves    map[string][][2]jsonFloat `json:"curves,omitempty"`
	Summaries []summaryWire             `json:"summaries,omitempty"`
}

type summaryWire struct {
	Scope string    `json:"scope"`
	Key   string    `json:"key"`
	Value jsonFloat `json:"value"`
	Text  string    `json:"text,omitempty"`
}

// MarshalJSON encodes the result; curve points are [epoch, value] pairs and
// non-finite numbers are strings (see jsonFloat).
func (r Result) MarshalJSON() ([]byte, error) {
	var w resultWire
	if len(r.Metrics) > 0 {
		w.Metrics = make(map[string]jsonFloat, len(r.Metrics))
		for k, v := range r.Metrics {
			w.Metrics[k] = jsonFloat(v)
		}
	}
	if len(r.Curves) > 0 {
		w.Curves = make(map[string][][2]jsonFloat, len(r.Curves))
		for k, pts := range r.Curves {
			out := make([][2]jsonFloat, len(pts))
			for i, p := range pts {
				out[i] = [2]jsonFloat{jsonFloat(p.Epoch), jsonFloat(p.Value)}
			}
			w.Curves[k] = out
		}
	}
	for _, s := range r.Summaries {
		w.Summaries = append(w.Summaries, summaryWire{Scope: s.Scope, Key: s.Key, Value: jsonFloat(s.Value), Text: s.Text})
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (r *Result) UnmarshalJSON(b []byte) error {
	var w resultWire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*r = Result{}
	if len(w.Metrics) > 0 {
		r.Metrics = make(map[string]float64, len(w.Metrics))
		for k, v := range w.Metrics {
			r.Metrics[k] = float64(v)
		}
	}
	if len(w.Curves) > 0 {
		r.Curves = make(map[string][]CurvePoint, len(w.Curves))
		for k, pts := range w.Curves {
			out := make([]CurvePoint, len(pts))
			for i, p := range pts {
				out[i] = CurvePoint{Epoch: float64(p[0]), Value: float64(p[1])}
			}
			r.Curves[k] = out
		}
	}
	for _, s := range w.Summaries {
		r.Summaries = append(r.Summaries, Summary{Scope: s.Scope, Key: s.Key, Value: float64(s.Value), Text: s.Text})
	}
	return nil
}
