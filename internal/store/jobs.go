package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Job statuses, as the Synapse backend spells them.
const (
	StatusPending   = "PENDING"
	StatusRunning   = "RUNNING"
	StatusStopped   = "STOPPED"
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
)

// Terminal reports whether status is final.
func Terminal(status string) bool {
	return status == StatusStopped || status == StatusSucceeded || status == StatusFailed
}

// Job is a run of a release's action on an agent (Synapse backend
// /jobs/{id}/). The JSON fields are nil until set.
type Job struct {
	ID             string // a UUID
	ReleaseID      int64
	Agent          string
	Action         string
	Params         json.RawMessage
	Status         string
	ProgressRecord json.RawMessage
	MetricsRecord  json.RawMessage
	Result         json.RawMessage
	Meta           json.RawMessage
	CreatedAt      time.Time
	StartedAt      *time.Time
	CompletedAt    *time.Time
	// ConsoleClosed reports that the job's agent has written its last
	// console line (CloseConsole).
	ConsoleClosed bool
	// ConsoleOffset is how far into its agent's output (bytes) the console
	// log has been read (AppendConsoleAt); an agent re-attaching after a
	// restart resumes there.
	ConsoleOffset int64
	// ConsoleSeq is the number of the console log's last line (lines are
	// numbered from 1; 0 for an empty log).
	ConsoleSeq int64
	// Reported is the terminal status the job's own run reported while it
	// still ran (ReportJob), "" before any; SettleJob ends the job with it.
	Reported string
	// Report holds the fields of that report, not yet applied: a JSON
	// object of progress_record, metrics_record, result and meta (those
	// the report sent), or nil. SettleJob applies them; a stop discards
	// them.
	Report json.RawMessage
}

// CreateJob stores a new PENDING job of j's release, agent, action and
// params, with a new UUID, and returns it.
func (s *Store) CreateJob(ctx context.Context, j Job) (Job, error) {
	j.ID = uuid.NewString()
	j.Status = StatusPending
	j.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	if j.Params == nil {
		j.Params = json.RawMessage("{}")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, release_id, agent, action, params, status, meta, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		j.ID, j.ReleaseID, j.Agent, j.Action, string(j.Params), j.Status, nullJSON(j.Meta), millis(j.CreatedAt))
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	return j, nil
}

// GetJob returns the job with that ID, or ErrNotFound.
func (s *Store) GetJob(ctx context.Context, id string) (Job, error) {
	rows, err := s.db.QueryContext(ctx, jobSelect+` WHERE id = $1`, id)
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	if len(jobs) == 0 {
		return Job{}, fmt.Errorf("get job %s: %w", id, ErrNotFound)
	}
	return jobs[0], nil
}

// JobFilter selects jobs for ListJobs. Zero fields select everything.
type JobFilter struct {
	Status string
	Agent  string
	// After is the cursor: the ID of the last job of the previous page.
	After string
	// Limit is the page size (default and maximum 1000).
	Limit int
}

// Statuses are the job statuses, in the order a job goes through them.
var Statuses = []string{StatusPending, StatusRunning, StatusStopped, StatusSucceeded, StatusFailed}

// where is the WHERE condition (without the keyword, "" for none) of f's
// Status and Agent, and its arguments.
func (f JobFilter) where() ([]string, []any) {
	var where []string
	var args []any
	if f.Status != "" {
		args = append(args, f.Status)
		where = append(where, fmt.Sprintf("status = $%d", len(args)))
	}
	if f.Agent != "" {
		args = append(args, f.Agent)
		where = append(where, fmt.Sprintf("agent = $%d", len(args)))
	}
	return where, args
}

// CountJobs returns how many jobs f's Status and Agent select (After and
// Limit are ignored): the total a paged list (DRF's count) reports.
func (s *Store) CountJobs(ctx context.Context, f JobFilter) (int, error) {
	where, args := f.where()
	q := `SELECT COUNT(*) FROM jobs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count jobs: %w", err)
	}
	return n, nil
}

// ListJobs returns jobs newest first, and the cursor of the next page (""
// when this was the last).
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]Job, string, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	where, args := f.where()
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.After != "" {
		after, err := s.GetJob(ctx, f.After)
		if err != nil {
			return nil, "", fmt.Errorf("list jobs: cursor: %w", err)
		}
		c, id := arg(millis(after.CreatedAt)), arg(after.ID)
		where = append(where, fmt.Sprintf("(created_at < %s OR (created_at = %s AND id < %s))", c, c, id))
	}
	q := jobSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	next := ""
	if len(jobs) > limit {
		jobs = jobs[:limit]
		next = jobs[limit-1].ID
	}
	return jobs, next, nil
}

// JobUpdate is a change to a job (Synapse backend PATCH /jobs/{id}/): the
// fields that are not nil or "" are set, but for Meta, a JSON object
// merged into the job's meta key by key (MergeMeta).
type JobUpdate struct {
	Status         string
	ProgressRecord json.RawMessage
	MetricsRecord  json.RawMessage
	Result         json.RawMessage
	Meta           json.RawMessage
}

// UpdateJob applies u to the job and returns it. Status moves PENDING →
// RUNNING → a terminal status (PENDING may also end directly); setting a
// job's own status again is a no-op, and any other change is an error
// matching ErrTransition. A terminal job takes no other changes either.
// RUNNING sets the start time, a terminal status the completion time.
func (s *Store) UpdateJob(ctx context.Context, id string, u JobUpdate) (Job, error) {
	return s.updateJob(ctx, id, u, modeUpdate)
}

// ReportJob records u, whose Status is terminal, as the outcome the job's
// own run reports (the plugin binary's final PATCH /jobs/{id}/) while the
// run goes on: Reported becomes u.Status and u's records, result and meta
// are held in Report, not applied, and the job stays RUNNING (a PENDING
// one becomes RUNNING) until its agent sees the run end and calls
// SettleJob. Reporting the same status again sets the held fields again;
// another status is ErrTransition. A stop (STOPPED, by UpdateJob or
// SettleJob) discards the report. A job already STOPPED is returned as it
// is, no error (a stopped run reports its end after the stop); a job that
// has ended otherwise is treated as by UpdateJob.
func (s *Store) ReportJob(ctx context.Context, id string, u JobUpdate) (Job, error) {
	if !Terminal(u.Status) {
		return s.UpdateJob(ctx, id, u)
	}
	return s.updateJob(ctx, id, u, modeReport)
}

// SettleJob records the end of the job's run as its agent saw it (u, a
// terminal status with its result and meta): when the run reported an
// outcome (ReportJob), the job ends with that status and the records,
// result and meta reported, u's are dropped, unless u is STOPPED (a stop
// wins, and the report is discarded).
// Otherwise it is UpdateJob.
func (s *Store) SettleJob(ctx context.Context, id string, u JobUpdate) (Job, error) {
	return s.updateJob(ctx, id, u, modeSettle)
}

const (
	modeUpdate = iota
	modeReport
	modeSettle
)

func (s *Store) updateJob(ctx context.Context, id string, u JobUpdate, mode int) (Job, error) {
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"progress_record", u.ProgressRecord}, {"metrics_record", u.MetricsRecord}, {"result", u.Result}, {"meta", u.Meta}} {
		if f.raw != nil && !json.Valid(f.raw) {
			return Job{}, fmt.Errorf("update job %s: %w", id, &InvalidJSONError{Field: f.name, Size: len(f.raw)})
		}
	}
	var out Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, jobSelect+` WHERE id = $1`, id)
		if err != nil {
			return err
		}
		jobs, err := scanJobs(rows)
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			return ErrNotFound
		}
		j := jobs[0]
		switch {
		case mode == modeReport && j.Status == StatusStopped:
			out = j
			return nil
		case mode == modeReport && !Terminal(j.Status):
			if j.Reported != "" && j.Reported != u.Status {
				return fmt.Errorf("%w: the job has reported %s already, not %s", ErrTransition, j.Reported, u.Status)
			}
			held, err := holdReport(j.Report, u)
			if err != nil {
				return err
			}
			j.Reported, j.Report = u.Status, held
			u = JobUpdate{Status: StatusRunning}
		case mode == modeSettle && j.Reported != "" && !Terminal(j.Status) && Terminal(u.Status) && u.Status != StatusStopped:
			var held struct {
				ProgressRecord json.RawMessage `json:"progress_record"`
				MetricsRecord  json.RawMessage `json:"metrics_record"`
				Result         json.RawMessage `json:"result"`
				Meta           json.RawMessage `json:"meta"`
			}
			_ = json.Unmarshal(j.Report, &held)
			u = JobUpdate{Status: j.Reported, ProgressRecord: held.ProgressRecord, MetricsRecord: held.MetricsRecord, Result: held.Result, Meta: held.Meta}
		}
		if u.Status != "" && u.Status != j.Status {
			if !allowed(j.Status, u.Status) {
				return fmt.Errorf("%w: %s to %s", ErrTransition, j.Status, u.Status)
			}
		} else if Terminal(j.Status) {
			if u.ProgressRecord == nil && u.MetricsRecord == nil && u.Result == nil && u.Meta == nil { // a repeated final status
				out = j
				return nil
			}
			return fmt.Errorf("%w: the job is %s", ErrTransition, j.Status)
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		if u.Status != "" && u.Status != j.Status {
			j.Status = u.Status
			if u.Status == StatusRunning {
				j.StartedAt = &now
			}
			if Terminal(u.Status) {
				j.CompletedAt = &now
				j.Reported, j.Report = "", nil // applied (SettleJob) or, by a stop, discarded
			}
		}
		for _, f := range []struct {
			dst *json.RawMessage
			src json.RawMessage
		}{{&j.ProgressRecord, u.ProgressRecord}, {&j.MetricsRecord, u.MetricsRecord}, {&j.Result, u.Result}} {
			if f.src != nil {
				*f.dst = f.src
			}
		}
		if u.Meta != nil {
			if j.Meta, err = MergeMeta(j.Meta, u.Meta); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET status = $1, progress_record = $2, metrics_record = $3, result = $4, meta = $5, started_at = $6, completed_at = $7, reported_status = $8, report = $9 WHERE id = $10`,
			j.Status, nullJSON(j.ProgressRecord), nullJSON(j.MetricsRecord), nullJSON(j.Result), nullJSON(j.Meta), nullMillis(j.StartedAt), nullMillis(j.CompletedAt),
			sql.NullString{String: j.Reported, Valid: j.Reported != ""}, nullJSON(j.Report), id)
		out = j
		return err
	})
	if err != nil {
		return Job{}, fmt.Errorf("update job %s: %w", id, err)
	}
	s.notify(id)
	return out, nil
}

// holdReport adds u's fields to held, the fields of a report not yet
// applied (Job.Report): records and result replace those held, meta is
// merged into the meta held (MergeMeta).
func holdReport(held json.RawMessage, u JobUpdate) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(held, &m)
	for k, v := range map[string]json.RawMessage{"progress_record": u.ProgressRecord, "metrics_record": u.MetricsRecord, "result": u.Result} {
		if v != nil {
			m[k] = v
		}
	}
	if u.Meta != nil {
		meta, err := MergeMeta(m["meta"], u.Meta)
		if err != nil {
			return nil, err
		}
		m["meta"] = meta
	}
	return json.Marshal(m)
}

func allowed(from, to string) bool {
	switch from {
	case StatusPending:
		return to == StatusRunning || Terminal(to)
	case StatusRunning:
		return Terminal(to)
	}
	return false
}

const jobSelect = `SELECT id, release_id, agent, action, params, status, progress_record, metrics_record, result, meta, created_at, started_at, completed_at, console_closed, console_offset, console_seq, reported_status, report FROM jobs`

func scanJobs(rows *sql.Rows) ([]Job, error) {
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var params string
		var progress, metrics, result, meta sql.NullString
		var created int64
		var started, completed sql.NullInt64
		var reported, report sql.NullString
		if err := rows.Scan(&j.ID, &j.ReleaseID, &j.Agent, &j.Action, &params, &j.Status, &progress, &metrics, &result, &meta, &created, &started, &completed, &j.ConsoleClosed, &j.ConsoleOffset, &j.ConsoleSeq, &reported, &report); err != nil {
			return nil, err
		}
		j.Reported, j.Report = reported.String, rawJSON(report)
		j.Params = json.RawMessage(params)
		j.ProgressRecord, j.MetricsRecord, j.Result, j.Meta = rawJSON(progress), rawJSON(metrics), rawJSON(result), rawJSON(meta)
		healJob(&j)
		j.CreatedAt, j.StartedAt, j.CompletedAt = time.UnixMilli(created).UTC(), fromMillis(started), fromMillis(completed)
		out = append(out, j)
	}
	return out, rows.Err()
}

// InvalidJSONNote is the meta key under which a job read from the
// database lists the fields whose stored value was not valid JSON (a
// database written before results were checked): those fields read as
// null (params as {}), so one broken row cannot break a listing.
const InvalidJSONNote = "invalid_json"

// healJob replaces j's stored values that are not valid JSON with null
// (params with {}, meta with {}) and lists their names in
// meta[InvalidJSONNote].
func healJob(j *Job) {
	var bad []string
	for _, f := range []struct {
		name string
		dst  *json.RawMessage
	}{{"params", &j.Params}, {"progress_record", &j.ProgressRecord}, {"metrics_record", &j.MetricsRecord}, {"result", &j.Result}, {"meta", &j.Meta}, {"report", &j.Report}} {
		if *f.dst != nil && !json.Valid(*f.dst) {
			bad = append(bad, f.name)
			*f.dst = nil
		}
	}
	if len(bad) == 0 {
		return
	}
	if j.Params == nil {
		j.Params = json.RawMessage("{}")
	}
	note, _ := json.Marshal(map[string][]string{InvalidJSONNote: bad})
	if m, err := MergeMeta(j.Meta, note); err == nil {
		j.Meta = m
	} else {
		j.Meta = note // meta is valid JSON but not an object
	}
}

func nullJSON(b json.RawMessage) sql.NullString {
	return sql.NullString{String: string(b), Valid: b != nil}
}

func rawJSON(v sql.NullString) json.RawMessage {
	if !v.Valid {
		return nil
	}
	return json.RawMessage(v.String)
}

func nullMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(*t), Valid: true}
}

// AppendConsole appends lines to the job's console log and returns the
// sequence number of the last one (lines are numbered from 1).
func (s *Store) AppendConsole(ctx context.Context, jobID string, lines []string) (int64, error) {
	return s.AppendConsoleAt(ctx, jobID, lines, -1)
}

// AppendConsoleAt is AppendConsole that also records, in the same
// transaction, offset as the job's ConsoleOffset: how far into its
// agent's output the lines reach (bytes). A negative offset leaves it
// unchanged.
func (s *Store) AppendConsoleAt(ctx context.Context, jobID string, lines []string, offset int64) (int64, error) {
	var last int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Reserving the numbers on the job's row locks it, so concurrent
		// appends to one job never take the same numbers.
		err := tx.QueryRowContext(ctx, `UPDATE jobs SET console_seq = console_seq + $1, console_offset = CASE WHEN CAST($2 AS BIGINT) < 0 THEN console_offset ELSE CAST($2 AS BIGINT) END WHERE id = $3 RETURNING console_seq`, len(lines), offset, jobID).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		// One multi-row INSERT per chunk: a statement per line is the cost
		// that dominates on PostgreSQL.
		seq := last - int64(len(lines))
		for chunk := range slices.Chunk(lines, 300) {
			var q strings.Builder
			q.WriteString(`INSERT INTO console_lines (job_id, seq, line) VALUES `)
			args := make([]any, 0, 1+2*len(chunk))
			args = append(args, jobID)
			for i, l := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				seq++
				args = append(args, seq, l)
				fmt.Fprintf(&q, "($1, $%d, $%d)", len(args)-1, len(args))
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append console log of job %s: %w", jobID, err)
	}
	s.notify(jobID)
	return last, nil
}

// CloseConsole records that the job's console log is complete: followers
// may end once the job has ended too.
func (s *Store) CloseConsole(ctx context.Context, jobID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET console_closed = $1 WHERE id = $2`, true, jobID)
	if err != nil {
		return fmt.Errorf("close console log of job %s: %w", jobID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("close console log of job %s: %w", jobID, ErrNotFound)
	}
	s.notify(jobID)
	return nil
}

// ConsoleLine is one line of a job's console log.
type ConsoleLine struct {
	Seq  int64
	Line string
}

// Console returns up to limit lines of the job's console log after
// sequence number after (0 for the start), in order.
func (s *Store) Console(ctx context.Context, jobID string, after int64, limit int) ([]ConsoleLine, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, line FROM console_lines WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, jobID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read console log of job %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []ConsoleLine
	for rows.Next() {
		var l ConsoleLine
		if err := rows.Scan(&l.Seq, &l.Line); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return out, nil
}

// ErrMetaNotObject is the error of a meta that is not a JSON object.
var ErrMetaNotObject = errors.New("meta: want a JSON object")

// MergeMeta merges patch, a JSON object, into meta (a JSON object, or nil
// for none) key by key: a key patch sets to null is removed, any other
// value replaces the key's. A patch that is not an object is
// ErrMetaNotObject; a meta that is not an object is replaced.
func MergeMeta(meta, patch json.RawMessage) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(patch, &p); err != nil || p == nil {
		return nil, ErrMetaNotObject
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(meta, &m) != nil || m == nil {
		m = map[string]json.RawMessage{}
	}
	for k, v := range p {
		if string(v) == "null" {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return json.Marshal(m)
}
