// Package store keeps experiment results in an embedded SQLite database: runs
// with their full configuration and status, final metrics, per-epoch curves
// and analysis summaries, and the Slurm tasks that produced them.
//
// Driver: modernc.org/sqlite, SQLite translated to pure Go, rather than
// mattn/go-sqlite3 (cgo). prism builds and runs with CGO_ENABLED=0 (the
// pure-Go GoMLX backend needs no C either), needs no C toolchain on a
// cluster's login node, and cross-compiles with plain GOOS/GOARCH; the
// translated code is slower than the C build, which is irrelevant here: a
// sweep writes a few rows per run, each run taking seconds to hours.
//
// Crash safety: every change is one transaction (BEGIN IMMEDIATE), the
// database is in WAL mode with synchronous=FULL, and a finished run is
// written exactly once: Record refuses to overwrite a run that is already
// done, and every table is keyed by run ID, so a run's rows can never be
// duplicated. A process killed at any point leaves either the whole
// transaction or none of it. busy_timeout lets several processes (a sweep
// and `prism results`, or two sweeps) share the file. Never put the database
// on a network file system: the Slurm executor has tasks write per-run files
// that the controller ingests instead.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/internal/faultpoint"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Store is an open results database. Its methods are safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
}

// migrations[i] brings the schema from version i to i+1. Append only; never
// edit a released migration.
var migrations = []string{
	// v1
	`CREATE TABLE runs (
		id           TEXT PRIMARY KEY,
		kind         TEXT NOT NULL,
		method       TEXT NOT NULL,
		config       TEXT NOT NULL,
		status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
		error        TEXT NOT NULL DEFAULT '',
		attempts     INTEGER NOT NULL DEFAULT 0,
		host         TEXT NOT NULL DEFAULT '',
		executor     TEXT NOT NULL DEFAULT '',
		created_at   TEXT NOT NULL,
		started_at   TEXT,
		finished_at  TEXT,
		wall_seconds REAL
	);
	CREATE INDEX runs_status ON runs(status);
	CREATE INDEX runs_method ON runs(method);
	CREATE TABLE specs (
		name       TEXT PRIMARY KEY,
		path       TEXT NOT NULL,
		source     TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE spec_runs (
		spec   TEXT NOT NULL REFERENCES specs(name) ON DELETE CASCADE,
		run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		PRIMARY KEY (spec, run_id)
	) WITHOUT ROWID;
	CREATE INDEX spec_runs_run ON spec_runs(run_id);
	CREATE TABLE metrics (
		run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		name   TEXT NOT NULL,
		value  REAL,
		PRIMARY KEY (run_id, name)
	) WITHOUT ROWID;
	CREATE TABLE curves (
		run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		name   TEXT NOT NULL,
		step   INTEGER NOT NULL,
		epoch  REAL,
		value  REAL,
		PRIMARY KEY (run_id, name, step)
	) WITHOUT ROWID;
	CREATE TABLE summaries (
		run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		scope  TEXT NOT NULL,
		key    TEXT NOT NULL,
		value  REAL,
		text   TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (run_id, scope, key)
	) WITHOUT ROWID;
	CREATE TABLE slurm_tasks (
		job_id       TEXT NOT NULL,
		task         INTEGER NOT NULL,
		run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		spec         TEXT NOT NULL,
		dir          TEXT NOT NULL,
		state        TEXT NOT NULL DEFAULT 'SUBMITTED',
		ended        INTEGER NOT NULL DEFAULT 0,
		submitted_at TEXT NOT NULL,
		PRIMARY KEY (job_id, task)
	);
	CREATE INDEX slurm_tasks_run ON slurm_tasks(run_id);
	CREATE INDEX slurm_tasks_open ON slurm_tasks(spec, ended);`,
}

// SchemaVersion is the schema version this package writes.
var SchemaVersion = len(migrations)

// Open opens (creating if needed) the database at path and brings its schema
// up to date. A database written by a newer prism is refused.
func Open(path string) (*Store, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: database path %q: '?' and '#' are not allowed in the file name", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	dsn := "file:" + path +
		"?_pragma=busy_timeout(30000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)" +
		"&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	// One connection: writers in this process queue on it instead of failing
	// with SQLITE_BUSY, and no query is ever nested inside another.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := retryWhileBusy(s.migrate); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openBusyLimit bounds how long Open waits for other processes that are
// creating or migrating the same database.
const openBusyLimit = 30 * time.Second

// retryWhileBusy runs f until it returns something other than SQLITE_BUSY or
// SQLITE_LOCKED, or openBusyLimit passes. SQLite does not call the busy
// handler while a fresh database is being switched to WAL, so several
// processes creating one database at once see SQLITE_BUSY at once instead of
// waiting; the failed connection is discarded and the next try opens another.
func retryWhileBusy(f func() error) error {
	deadline := time.Now().Add(openBusyLimit)
	wait := 5 * time.Millisecond
	for {
		err := f()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED
// (including their extended codes).
func isBusy(err error) bool {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return false
	}
	switch coded.Code() & 0xff {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return true
	}
	return false
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate() error {
	ctx := context.Background()
	for {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: %s: %w", s.path, err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: %s: reading schema version: %w", s.path, err)
		}
		if v > len(migrations) {
			tx.Rollback()
			return fmt.Errorf("store: %s has schema version %d, newer than this prism understands (%d): use a newer prism", s.path, v, len(migrations))
		}
		if v == len(migrations) {
			return tx.Rollback()
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: %s: migrating schema to version %d: %w", s.path, v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: %s: %w", s.path, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: %s: migrating schema to version %d: %w", s.path, v+1, err)
		}
	}
}

// Version returns the database's schema version.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// Check runs SQLite's integrity and foreign-key checks.
func (s *Store) Check(ctx context.Context) error {
	var res string
	if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("store: %s: integrity check: %w", s.path, err)
	}
	if res != "ok" {
		return fmt.Errorf("store: %s: integrity check: %s", s.path, res)
	}
	rows, err := s.db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("store: %s: foreign key check: %w", s.path, err)
	}
	defer rows.Close()
	if rows.Next() {
		return fmt.Errorf("store: %s: foreign key check found dangling rows", s.path)
	}
	return rows.Err()
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func timeText(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// real maps NaN to NULL (SQLite has no NaN); ±Inf are stored as is.
func real(x float64) any {
	if math.IsNaN(x) {
		return nil
	}
	return x
}

func unreal(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}

// withTx runs fn in one immediate transaction.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %w", s.path, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", s.path, err)
	}
	return nil
}

// AddRuns records a spec (its name, file and text) and registers its runs:
// runs not yet in the database are added as pending, and every run becomes a
// member of the spec. Existing runs keep their status and results.
func (s *Store) AddRuns(ctx context.Context, spec *experiment.Spec, runs []experiment.Run) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		t := now()
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO specs(name, path, source, updated_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT(name) DO UPDATE SET path = excluded.path, source = excluded.source, updated_at = excluded.updated_at`,
			spec.Name, spec.File, string(spec.Source), t); err != nil {
			return fmt.Errorf("store: recording spec %q: %w", spec.Name, err)
		}
		for _, r := range runs {
			cfg, err := r.Config.Canonical()
			if err != nil {
				return fmt.Errorf("store: run %s: %w", experiment.ShortID(r.ID), err)
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO runs(id, kind, method, config, status, created_at) VALUES (?, ?, ?, ?, 'pending', ?)
				 ON CONFLICT(id) DO NOTHING`,
				r.ID, r.Config.Kind, r.Config.Method, string(cfg), t); err != nil {
				return fmt.Errorf("store: adding run %s: %w", experiment.ShortID(r.ID), err)
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO spec_runs(spec, run_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, spec.Name, r.ID); err != nil {
				return fmt.Errorf("store: adding run %s to spec %q: %w", experiment.ShortID(r.ID), spec.Name, err)
			}
		}
		return nil
	})
}

// Statuses returns the status of each of ids that is in the database.
func (s *Store) Statuses(ctx context.Context, ids []string) (map[string]experiment.Status, error) {
	out := make(map[string]experiment.Status, len(ids))
	const chunk = 500
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		args := make([]any, len(part))
		for k, id := range part {
			args[k] = id
		}
		rows, err := s.db.QueryContext(ctx,
			"SELECT id, status FROM runs WHERE id IN (?"+strings.Repeat(",?", len(part)-1)+")", args...)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", s.path, err)
		}
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = experiment.Status(st)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MarkRunning notes that a run has started (host, executor, start time, one
// more attempt). A run that is already done is left alone.
func (s *Store) MarkRunning(ctx context.Context, id, host, executor string, started time.Time) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`UPDATE runs SET status = 'running', error = '', host = ?, executor = ?, started_at = ?,
			        finished_at = NULL, wall_seconds = NULL, attempts = attempts + 1
			 WHERE id = ? AND status != 'done'`,
			host, executor, timeText(started), id)
		if err != nil {
			return fmt.Errorf("store: marking run %s running: %w", experiment.ShortID(id), err)
		}
		return nil
	})
}

// ErrAlreadyDone is returned by Record for a run whose result is stored.
var ErrAlreadyDone = errors.New("run already has a stored result")

// Record stores a finished run — status, reason, timings, metrics, curves
// and summaries — in one transaction. A run that is already done is never
// rewritten (Record returns ErrAlreadyDone and changes nothing), so each
// result is stored exactly once however often it is delivered; a failed run
// may be recorded again (its old rows are replaced). A run missing from the
// database (e.g. a per-run file from another controller) is added.
func (s *Store) Record(ctx context.Context, rec experiment.RunRecord) error {
	if err := rec.Check(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	cfg, err := rec.Config.Canonical()
	if err != nil {
		return fmt.Errorf("store: run %s: %w", experiment.ShortID(rec.ID), err)
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, "SELECT status FROM runs WHERE id = ?", rec.ID).Scan(&status)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO runs(id, kind, method, config, status, created_at, attempts) VALUES (?, ?, ?, ?, 'running', ?, 1)`,
				rec.ID, rec.Config.Kind, rec.Config.Method, string(cfg), now()); err != nil {
				return fmt.Errorf("store: adding run %s: %w", experiment.ShortID(rec.ID), err)
			}
		case err != nil:
			return fmt.Errorf("store: reading run %s: %w", experiment.ShortID(rec.ID), err)
		case status == string(experiment.StatusDone):
			return ErrAlreadyDone
		}
		var wall any
		if !rec.Started.IsZero() && !rec.Finished.IsZero() {
			wall = rec.Finished.Sub(rec.Started).Seconds()
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE runs SET status = ?, error = ?, host = ?, executor = ?, started_at = ?, finished_at = ?,
			        wall_seconds = ?, attempts = MAX(attempts, 1)
			 WHERE id = ?`,
			string(rec.Status), rec.Error, rec.Host, rec.Executor, timeText(rec.Started), timeText(rec.Finished), wall, rec.ID); err != nil {
			return fmt.Errorf("store: recording run %s: %w", experiment.ShortID(rec.ID), err)
		}
		for _, table := range []string{"metrics", "curves", "summaries"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE run_id = ?", rec.ID); err != nil {
				return fmt.Errorf("store: clearing %s of run %s: %w", table, experiment.ShortID(rec.ID), err)
			}
		}
		for name, v := range rec.Result.Metrics {
			if _, err := tx.ExecContext(ctx, "INSERT INTO metrics(run_id, name, value) VALUES (?, ?, ?)", rec.ID, name, real(v)); err != nil {
				return fmt.Errorf("store: metric %q of run %s: %w", name, experiment.ShortID(rec.ID), err)
			}
		}
		for name, pts := range rec.Result.Curves {
			for step, p := range pts {
				if _, err := tx.ExecContext(ctx, "INSERT INTO curves(run_id, name, step, epoch, value) VALUES (?, ?, ?, ?, ?)",
					rec.ID, name, step, real(p.Epoch), real(p.Value)); err != nil {
					return fmt.Errorf("store: curve %q of run %s: %w", name, experiment.ShortID(rec.ID), err)
				}
			}
		}
		for _, sm := range rec.Result.Summaries {
			if _, err := tx.ExecContext(ctx, "INSERT INTO summaries(run_id, scope, key, value, text) VALUES (?, ?, ?, ?, ?)",
				rec.ID, sm.Scope, sm.Key, real(sm.Value), sm.Text); err != nil {
				return fmt.Errorf("store: summary (%q, %q) of run %s: %w", sm.Scope, sm.Key, experiment.ShortID(rec.ID), err)
			}
		}
		faultpoint.Hit("store.before-commit")
		return nil
	})
}

// Row is one run as stored.
type Row struct {
	ID          string
	Specs       []string
	Config      experiment.RunConfig
	Status      experiment.Status
	Error       string
	Attempts    int
	Host        string
	Executor    string
	Created     time.Time
	Started     time.Time
	Finished    time.Time
	WallSeconds float64 // NaN when not finished
	Metrics     map[string]float64
}

// Query returns the runs matching f, ordered by f.Sort (default: spec order
// of creation, then ID).
func (s *Store) Query(ctx context.Context, f Filter) ([]Row, error) {
	var where []string
	var args []any
	if f.Spec != "" {
		where = append(where, "r.id IN (SELECT run_id FROM spec_runs WHERE spec = ?)")
		args = append(args, f.Spec)
	}
	if len(f.Methods) > 0 {
		where = append(where, "r.method IN (?"+strings.Repeat(",?", len(f.Methods)-1)+")")
		for _, m := range f.Methods {
			args = append(args, m)
		}
	}
	if len(f.Statuses) > 0 {
		where = append(where, "r.status IN (?"+strings.Repeat(",?", len(f.Statuses)-1)+")")
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	if f.IDPrefix != "" {
		where = append(where, "r.id LIKE ? ESCAPE '\\'")
		args = append(args, strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.IDPrefix)+"%")
	}
	q := `SELECT r.id, r.config, r.status, r.error, r.attempts, r.host, r.executor, r.created_at,
	             r.started_at, r.finished_at, r.wall_seconds,
	             (SELECT group_concat(spec, char(10)) FROM (SELECT spec FROM spec_runs WHERE run_id = r.id ORDER BY spec))
	      FROM runs r`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY r.rowid"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.path, err)
	}
	var out []Row
	index := map[string]int{}
	for rows.Next() {
		var r Row
		var cfg, status, created string
		var started, finished, specs sql.NullString
		var wall sql.NullFloat64
		if err := rows.Scan(&r.ID, &cfg, &status, &r.Error, &r.Attempts, &r.Host, &r.Executor, &created,
			&started, &finished, &wall, &specs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: %s: %w", s.path, err)
		}
		if err := json.Unmarshal([]byte(cfg), &r.Config); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: %s: run %s: stored configuration: %w", s.path, experiment.ShortID(r.ID), err)
		}
		r.Status = experiment.Status(status)
		r.Created = parseTime(created)
		r.Started = parseTime(started.String)
		r.Finished = parseTime(finished.String)
		r.WallSeconds = unreal(wall)
		if specs.Valid && specs.String != "" {
			r.Specs = strings.Split(specs.String, "\n")
		}
		r.Metrics = map[string]float64{}
		index[r.ID] = len(out)
		out = append(out, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		mrows, err := s.db.QueryContext(ctx, "SELECT run_id, name, value FROM metrics")
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", s.path, err)
		}
		for mrows.Next() {
			var id, name string
			var v sql.NullFloat64
			if err := mrows.Scan(&id, &name, &v); err != nil {
				mrows.Close()
				return nil, err
			}
			if i, ok := index[id]; ok {
				out[i].Metrics[name] = unreal(v)
			}
		}
		if err := mrows.Close(); err != nil {
			return nil, err
		}
	}
	var fields []string
	for _, c := range f.Where {
		fields = append(fields, c.Field)
	}
	if f.Sort != "" {
		fields = append(fields, f.Sort)
	}
	if err := CheckFields(out, fields...); err != nil {
		return nil, err
	}
	if len(f.Where) > 0 {
		kept := out[:0]
		for _, r := range out {
			ok := true
			for _, c := range f.Where {
				if !c.Match(r) {
					ok = false
					break
				}
			}
			if ok {
				kept = append(kept, r)
			}
		}
		out = kept
	}
	if f.Sort != "" {
		sortRows(out, f.Sort, f.Descending)
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// Curves returns the curves of the given runs: id → name → points in order.
func (s *Store) Curves(ctx context.Context, ids []string) (map[string]map[string][]experiment.CurvePoint, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	rows, err := s.db.QueryContext(ctx, "SELECT run_id, name, epoch, value FROM curves ORDER BY run_id, name, step")
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string]map[string][]experiment.CurvePoint{}
	for rows.Next() {
		var id, name string
		var epoch, value sql.NullFloat64
		if err := rows.Scan(&id, &name, &epoch, &value); err != nil {
			return nil, err
		}
		if !want[id] {
			continue
		}
		if out[id] == nil {
			out[id] = map[string][]experiment.CurvePoint{}
		}
		out[id][name] = append(out[id][name], experiment.CurvePoint{Epoch: unreal(epoch), Value: unreal(value)})
	}
	return out, rows.Err()
}

// Summaries returns the analysis summaries of the given runs, ordered by
// scope and key.
func (s *Store) Summaries(ctx context.Context, ids []string) (map[string][]experiment.Summary, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	rows, err := s.db.QueryContext(ctx, "SELECT run_id, scope, key, value, text FROM summaries ORDER BY run_id, scope, key")
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string][]experiment.Summary{}
	for rows.Next() {
		var id string
		var sm experiment.Summary
		var v sql.NullFloat64
		if err := rows.Scan(&id, &sm.Scope, &sm.Key, &v, &sm.Text); err != nil {
			return nil, err
		}
		if want[id] {
			sm.Value = unreal(v)
			out[id] = append(out[id], sm)
		}
	}
	return out, rows.Err()
}

// SpecInfo is a spec recorded in the database with its run counts by status.
type SpecInfo struct {
	Name    string
	Path    string
	Source  string
	Updated time.Time
	Counts  map[experiment.Status]int
}

// Specs lists the recorded specs, by name.
func (s *Store) Specs(ctx context.Context) ([]SpecInfo, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, path, source, updated_at FROM specs ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.path, err)
	}
	var out []SpecInfo
	for rows.Next() {
		var si SpecInfo
		var upd string
		if err := rows.Scan(&si.Name, &si.Path, &si.Source, &upd); err != nil {
			rows.Close()
			return nil, err
		}
		si.Updated = parseTime(upd)
		si.Counts = map[experiment.Status]int{}
		out = append(out, si)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	crows, err := s.db.QueryContext(ctx,
		"SELECT sr.spec, r.status, count(*) FROM spec_runs sr JOIN runs r ON r.id = sr.run_id GROUP BY sr.spec, r.status")
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.path, err)
	}
	defer crows.Close()
	idx := map[string]int{}
	for i, si := range out {
		idx[si.Name] = i
	}
	for crows.Next() {
		var spec, status string
		var n int
		if err := crows.Scan(&spec, &status, &n); err != nil {
			return nil, err
		}
		if i, ok := idx[spec]; ok {
			out[i].Counts[experiment.Status(status)] = n
		}
	}
	return out, crows.Err()
}

// SlurmTask is one task of a submitted Slurm array.
type SlurmTask struct {
	JobID string
	Task  int
	RunID string
	Spec  string
	Dir   string // the submission's directory (manifest, script, logs)
	State string // last Slurm state seen ("SUBMITTED" before any)
}

// Key is "JOB_TASK", Slurm's name for an array task.
func (t SlurmTask) Key() string { return fmt.Sprintf("%s_%d", t.JobID, t.Task) }

// AddSlurmTasks records the tasks of a submitted array (task i runs
// runIDs[i]) and, in the same transaction, counts an attempt for each run
// and marks it pending (queued) with its task as executor.
func (s *Store) AddSlurmTasks(ctx context.Context, jobID, spec, dir string, runIDs []string) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		t := now()
		for i, id := range runIDs {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO slurm_tasks(job_id, task, run_id, spec, dir, submitted_at) VALUES (?, ?, ?, ?, ?, ?)`,
				jobID, i, id, spec, dir, t); err != nil {
				return fmt.Errorf("store: recording Slurm task %s_%d: %w", jobID, i, err)
			}
			if _, err := tx.ExecContext(ctx,
				`UPDATE runs SET attempts = attempts + 1, status = 'pending', error = '', executor = ?
				 WHERE id = ? AND status != 'done'`, fmt.Sprintf("slurm %s_%d", jobID, i), id); err != nil {
				return fmt.Errorf("store: queueing run %s: %w", experiment.ShortID(id), err)
			}
		}
		return nil
	})
}

// OpenSlurmTasks returns the tasks not yet known to have ended, for one spec
// ("" for all), ordered by job and task.
func (s *Store) OpenSlurmTasks(ctx context.Context, spec string) ([]SlurmTask, error) {
	q := `SELECT job_id, task, run_id, spec, dir, state FROM slurm_tasks WHERE ended = 0`
	var args []any
	if spec != "" {
		q += " AND spec = ?"
		args = append(args, spec)
	}
	q += " ORDER BY CAST(job_id AS INTEGER), job_id, task"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []SlurmTask
	for rows.Next() {
		var t SlurmTask
		if err := rows.Scan(&t.JobID, &t.Task, &t.RunID, &t.Spec, &t.Dir, &t.State); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TaskState is a Slurm task's state and whether the task has ended.
type TaskState struct {
	State string
	Ended bool
}

// SetSlurmTaskStates updates task states by key "JOB_TASK".
func (s *Store) SetSlurmTaskStates(ctx context.Context, states map[string]TaskState) error {
	if len(states) == 0 {
		return nil
	}
	keys := make([]string, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return s.withTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			i := strings.LastIndexByte(k, '_')
			if i <= 0 {
				return fmt.Errorf("store: Slurm task key %q, expected JOB_TASK", k)
			}
			st := states[k]
			if _, err := tx.ExecContext(ctx, "UPDATE slurm_tasks SET state = ?, ended = ? WHERE job_id = ? AND task = ?",
				st.State, st.Ended, k[:i], k[i+1:]); err != nil {
				return fmt.Errorf("store: Slurm task %s: %w", k, err)
			}
		}
		return nil
	})
}

// Config returns a stored run's configuration.
func (s *Store) Config(ctx context.Context, id string) (experiment.RunConfig, error) {
	var text string
	var cfg experiment.RunConfig
	if err := s.db.QueryRowContext(ctx, "SELECT config FROM runs WHERE id = ?", id).Scan(&text); err != nil {
		return cfg, fmt.Errorf("store: run %s: %w", experiment.ShortID(id), err)
	}
	if err := json.Unmarshal([]byte(text), &cfg); err != nil {
		return cfg, fmt.Errorf("store: run %s: stored configuration: %w", experiment.ShortID(id), err)
	}
	return cfg, nil
}

// CountRows returns the number of rows of one of the store's tables.
func (s *Store) CountRows(ctx context.Context, table string) (int, error) {
	switch table {
	case "runs", "specs", "spec_runs", "metrics", "curves", "summaries", "slurm_tasks":
	default:
		return 0, fmt.Errorf("store: no table %q", table)
	}
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n)
	return n, err
}

// Network file systems SQLite must not be used on (statfs f_type magics):
// their locking and shared memory are unreliable, so WAL can corrupt.
var networkFS = map[int64]string{
	0x6969:     "NFS",
	0x517B:     "SMB",
	0xFF534D42: "CIFS",
	0xFE534D42: "SMB2",
	0x0BD00BD0: "Lustre",
	0x47504653: "GPFS",
	0x19830326: "BeeGFS",
	0x013111A8: "IBRIX",
	0x00C36400: "CephFS",
}

// CheckLocalFS returns an error when path's directory is on a network file
// system (NFS, SMB, Lustre, GPFS, BeeGFS, CephFS), where SQLite databases
// corrupt. Put the database on the controller's local disk.
func CheckLocalFS(path string) error {
	dir := filepath.Dir(path)
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	fs, err := statfsType(dir)
	if err != nil {
		return nil // cannot tell; do not block
	}
	if name, bad := networkFS[fs]; bad {
		return fmt.Errorf("store: %s is on a network file system (%s); SQLite databases corrupt there: put the database on local disk (--db /local/path/results.db)", path, name)
	}
	return nil
}
