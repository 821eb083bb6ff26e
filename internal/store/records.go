package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Token kinds.
const (
	TokenAdmin = "admin" // full access (the first token, `synapse server token create`)
	TokenJob   = "job"   // one job's reporting calls, revoked when the job ends
)

// Token is an access token's record; the secret itself is never stored,
// only its SHA-256.
type Token struct {
	ID        string
	Name      string
	Kind      string
	JobID     string // for TokenJob
	CreatedAt time.Time
	RevokedAt *time.Time
}

// hashToken is what is stored of a secret.
func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken creates a token and returns its secret ("syn_" and 40 hex
// digits), shown once: only its hash is kept.
func (s *Store) CreateToken(ctx context.Context, name, kind, jobID string) (secret string, t Token, err error) {
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	secret = "syn_" + hex.EncodeToString(raw)
	t = Token{ID: uuid.NewString(), Name: name, Kind: kind, JobID: jobID, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	_, err = s.db.ExecContext(ctx, `INSERT INTO tokens (id, name, hash, kind, job_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, name, hashToken(secret), kind, sql.NullString{String: jobID, Valid: jobID != ""}, millis(t.CreatedAt))
	if err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	return secret, t, nil
}

// LookupToken returns the live token whose secret is secret, or an error
// matching ErrNotFound (unknown or revoked).
func (s *Store) LookupToken(ctx context.Context, secret string) (Token, error) {
	rows, err := s.db.QueryContext(ctx, tokenSelect+` WHERE hash = $1 AND revoked_at IS NULL`, hashToken(secret))
	if err != nil {
		return Token{}, fmt.Errorf("look up token: %w", err)
	}
	ts, err := scanTokens(rows)
	if err != nil {
		return Token{}, fmt.Errorf("look up token: %w", err)
	}
	if len(ts) == 0 {
		return Token{}, fmt.Errorf("look up token: %w", ErrNotFound)
	}
	return ts[0], nil
}

// ListTokens returns every token, revoked ones included, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, tokenSelect+` ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return scanTokens(rows)
}

// RevokeToken revokes the token with that ID (or, with a job ID, every
// token of that job). Revoking again is not an error; an unknown ID is
// ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 OR (kind = $3 AND job_id = $2)`,
		millis(s.now()), id, TokenJob)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke token %s: %w", id, ErrNotFound)
	}
	return nil
}

const tokenSelect = `SELECT id, name, kind, job_id, created_at, revoked_at FROM tokens`

func scanTokens(rows *sql.Rows) ([]Token, error) {
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var job sql.NullString
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &t.Kind, &job, &created, &revoked); err != nil {
			return nil, err
		}
		t.JobID, t.CreatedAt, t.RevokedAt = job.String, time.UnixMilli(created).UTC(), fromMillis(revoked)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Plugin is a plugin's record (Synapse backend GET /plugins/{id}/).
type Plugin struct {
	ID          int64
	Code        string
	Name        string
	Category    string
	Description string
	CreatedAt   time.Time
}

// CreatePlugin creates p (ID and CreatedAt are set); a code in use is
// ErrExists.
func (s *Store) CreatePlugin(ctx context.Context, p Plugin) (Plugin, error) {
	p.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	err := s.db.QueryRowContext(ctx, `INSERT INTO plugins (code, name, category, description, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		p.Code, p.Name, p.Category, p.Description, millis(p.CreatedAt)).Scan(&p.ID)
	if isUnique(err) {
		return Plugin{}, fmt.Errorf("create plugin %q: %w", p.Code, ErrExists)
	}
	if err != nil {
		return Plugin{}, fmt.Errorf("create plugin %q: %w", p.Code, err)
	}
	return p, nil
}

// GetPlugin returns the plugin with code code, or ErrNotFound.
func (s *Store) GetPlugin(ctx context.Context, code string) (Plugin, error) {
	ps, err := s.plugins(ctx, ` WHERE code = $1`, code)
	if err == nil && len(ps) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Plugin{}, fmt.Errorf("get plugin %q: %w", code, err)
	}
	return ps[0], nil
}

// GetPluginByID returns the plugin with that ID, or ErrNotFound.
func (s *Store) GetPluginByID(ctx context.Context, id int64) (Plugin, error) {
	ps, err := s.plugins(ctx, ` WHERE id = $1`, id)
	if err == nil && len(ps) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Plugin{}, fmt.Errorf("get plugin %d: %w", id, err)
	}
	return ps[0], nil
}

// ListPlugins returns every plugin, by code.
func (s *Store) ListPlugins(ctx context.Context) ([]Plugin, error) {
	ps, err := s.plugins(ctx, ` ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	return ps, nil
}

// PluginsPage returns at most limit plugins (1 to 1000; else 1000) by
// code after the first offset, and how many plugins there are in all.
func (s *Store) PluginsPage(ctx context.Context, offset, limit int) ([]Plugin, int, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM plugins`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("list plugins: %w", err)
	}
	ps, err := s.plugins(ctx, ` ORDER BY code LIMIT $1 OFFSET $2`, limit, max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("list plugins: %w", err)
	}
	return ps, total, nil
}

func (s *Store) plugins(ctx context.Context, where string, args ...any) ([]Plugin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, code, name, category, description, created_at FROM plugins`+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Plugin
	for rows.Next() {
		var p Plugin
		var created int64
		if err := rows.Scan(&p.ID, &p.Code, &p.Name, &p.Category, &p.Description, &created); err != nil {
			return nil, err
		}
		p.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// Release is a published version of a plugin (Synapse backend
// /plugin_releases/): its config (config.yaml as JSON) and the SHA-256 and
// size of its zip.
type Release struct {
	ID        int64
	PluginID  int64
	Version   string
	Config    json.RawMessage
	Debug     bool
	SHA256    string
	Size      int64
	CreatedAt time.Time
}

// CreateRelease stores r. A version that exists is ErrExists, unless r is
// a debug release and the one that exists is a debug release too, which r
// replaces (keeping its ID, so jobs that ran it still point at it); a
// debug release never replaces a published (non-debug) one: ErrPublished.
func (s *Store) CreateRelease(ctx context.Context, r Release) (Release, error) {
	r.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		var debug bool
		err := tx.QueryRowContext(ctx, `SELECT id, debug FROM releases WHERE plugin_id = $1 AND version = $2`, r.PluginID, r.Version).Scan(&id, &debug)
		switch {
		case err == nil && !r.Debug:
			return ErrExists
		case err == nil && !debug:
			return ErrPublished
		case err == nil:
			r.ID = id
			_, err = tx.ExecContext(ctx, `UPDATE releases SET config = $1, debug = $2, sha256 = $3, size = $4, created_at = $5 WHERE id = $6`,
				string(r.Config), r.Debug, r.SHA256, r.Size, millis(r.CreatedAt), id)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO releases (plugin_id, version, config, debug, sha256, size, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			r.PluginID, r.Version, string(r.Config), r.Debug, r.SHA256, r.Size, millis(r.CreatedAt)).Scan(&r.ID)
	})
	if isUnique(err) { // a concurrent create of the same version
		err = ErrExists
	}
	if err != nil {
		return Release{}, fmt.Errorf("create release %s of plugin %d: %w", r.Version, r.PluginID, err)
	}
	return r, nil
}

// FindRelease returns version of the plugin, or with version "" its newest
// release (debug releases only when debug is true), or ErrNotFound.
func (s *Store) FindRelease(ctx context.Context, pluginID int64, version string, debug bool) (Release, error) {
	q := releaseSelect + ` WHERE plugin_id = $1 AND version = $2`
	args := []any{pluginID, version}
	if version == "" {
		q = releaseSelect + ` WHERE plugin_id = $1 AND (debug = $2 OR $3) ORDER BY created_at DESC, id DESC LIMIT 1`
		args = []any{pluginID, false, debug}
	}
	r, err := scanRelease(s.db.QueryRowContext(ctx, q, args...))
	if err != nil {
		return Release{}, fmt.Errorf("find release %q of plugin %d: %w", version, pluginID, err)
	}
	return r, nil
}

// GetRelease returns the release with that ID, or ErrNotFound.
func (s *Store) GetRelease(ctx context.Context, id int64) (Release, error) {
	r, err := scanRelease(s.db.QueryRowContext(ctx, releaseSelect+` WHERE id = $1`, id))
	if err != nil {
		return Release{}, fmt.Errorf("get release %d: %w", id, err)
	}
	return r, nil
}

// ReleaseFilter selects the releases ListReleases returns.
type ReleaseFilter struct {
	PluginID int64 // only this plugin's; 0 for every plugin's
	Offset   int   // skip this many
	Limit    int   // at most this many (default and at most 1000)
}

// ListReleases returns the releases f selects, newest first (by their
// creation, which a debug re-publish renews), and how many there are in
// all before Offset and Limit.
func (s *Store) ListReleases(ctx context.Context, f ReleaseFilter) ([]Release, int, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	where, args := "", []any{}
	if f.PluginID != 0 {
		where, args = ` WHERE plugin_id = $1`, append(args, f.PluginID)
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM releases`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("list releases: %w", err)
	}
	q := fmt.Sprintf(`%s%s ORDER BY created_at DESC, id DESC LIMIT $%d OFFSET $%d`, releaseSelect, where, len(args)+1, len(args)+2)
	rows, err := s.db.QueryContext(ctx, q, append(args, limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list releases: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list releases: %w", err)
	}
	return out, total, nil
}

const releaseSelect = `SELECT id, plugin_id, version, config, debug, sha256, size, created_at FROM releases`

func scanRelease(row interface{ Scan(...any) error }) (Release, error) {
	var r Release
	var cfg string
	var created int64
	err := row.Scan(&r.ID, &r.PluginID, &r.Version, &cfg, &r.Debug, &r.SHA256, &r.Size, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Release{}, ErrNotFound
	}
	if err != nil {
		return Release{}, err
	}
	r.Config, r.CreatedAt = json.RawMessage(cfg), time.UnixMilli(created).UTC()
	return r, nil
}
