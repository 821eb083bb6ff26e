package store

import (
	"context"
	"database/sql"
	"fmt"
)

// AgentIDs returns the ID of every agent the database knows, by name,
// first registering the names given (in order) and then the agents of
// existing jobs that have no ID yet. An ID is assigned once per name and
// never changes or moves to another name, so a server started with its
// --agent flags reordered, or without an agent, keeps the IDs of the
// Synapse backend's agent field ({id, name}) stable. On a database whose
// jobs predate the agents table, the agents named first get IDs 1, 2, …
// in order, as the flags' order gave them before.
func (s *Store) AgentIDs(ctx context.Context, names []string) (map[string]int, error) {
	out := map[string]int{}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := millis(s.now())
		for _, n := range names {
			if _, err := tx.ExecContext(ctx, `INSERT INTO agents (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, n, now); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents (name, created_at) SELECT DISTINCT agent, CAST($1 AS BIGINT) FROM jobs WHERE agent NOT IN (SELECT name FROM agents) ORDER BY agent`, now); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, name FROM agents`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				return err
			}
			out[name] = id
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("register agents: %w", err)
	}
	return out, nil
}
