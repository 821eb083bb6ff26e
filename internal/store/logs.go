package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// LogEntry is one structured log entry of a job (Synapse backend POST
// /logs/): the event name and its data, the time the worker gave
// (ISO-8601 text, kept as sent), and optionally a level, a step and a file
// (a base64 data URI).
type LogEntry struct {
	ID       int64
	JobID    string
	Event    string
	Data     json.RawMessage
	Datetime string
	Level    string
	Step     string
	File     string
}

// AddLogs stores entries, in order, in one transaction: all or none. An
// entry of a job that does not exist is ErrNotFound.
func (s *Store) AddLogs(ctx context.Context, entries []LogEntry) error {
	now := millis(s.now())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		known := map[string]bool{}
		for _, e := range entries {
			if !known[e.JobID] {
				var one int
				if err := tx.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE id = $1`, e.JobID).Scan(&one); err == sql.ErrNoRows {
					return fmt.Errorf("job %s: %w", e.JobID, ErrNotFound)
				} else if err != nil {
					return err
				}
				known[e.JobID] = true
			}
			data := e.Data
			if data == nil {
				data = json.RawMessage("{}")
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_logs (job_id, event, data, datetime, level, step, file, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				e.JobID, e.Event, string(data), e.Datetime, e.Level, e.Step, e.File, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add log entries: %w", err)
	}
	return nil
}

// Logs returns up to limit log entries of the job with IDs above after, in
// order.
func (s *Store) Logs(ctx context.Context, jobID string, after int64, limit int) ([]LogEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, job_id, event, data, datetime, level, step, file FROM job_logs WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3`, jobID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read log entries of job %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() {
		var e LogEntry
		var data string
		if err := rows.Scan(&e.ID, &e.JobID, &e.Event, &data, &e.Datetime, &e.Level, &e.Step, &e.File); err != nil {
			return nil, err
		}
		e.Data = json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}
