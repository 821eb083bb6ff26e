package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Session is a dashboard (/ui/) sign-in: the access token that signed in
// and when the session ends. The session ID itself is never stored, only
// its SHA-256.
type Session struct {
	TokenID   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateSession starts a session of the token with ID tokenID, valid for
// ttl, and returns its ID (64 hex digits, shown once: the cookie's value).
// Sessions that have expired are deleted on the way.
func (s *Store) CreateSession(ctx context.Context, tokenID string, ttl time.Duration) (id string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	id = hex.EncodeToString(raw)
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM ui_sessions WHERE expires_at <= $1`, millis(now)); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO ui_sessions (hash, token_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		hashToken(id), tokenID, millis(now), millis(now.Add(ttl))); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return id, nil
}

// LookupSession returns the live session whose ID is id, with the token
// that signed in: an unknown or expired session, or one whose token has
// been revoked, is ErrNotFound.
func (s *Store) LookupSession(ctx context.Context, id string) (Session, Token, error) {
	var sess Session
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT token_id, created_at, expires_at FROM ui_sessions WHERE hash = $1 AND expires_at > $2`,
		hashToken(id), millis(s.now())).Scan(&sess.TokenID, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Session{}, Token{}, fmt.Errorf("look up session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	rows, err := s.db.QueryContext(ctx, tokenSelect+` WHERE id = $1 AND revoked_at IS NULL`, sess.TokenID)
	if err != nil {
		return Session{}, Token{}, fmt.Errorf("look up session: %w", err)
	}
	ts, err := scanTokens(rows)
	if err != nil {
		return Session{}, Token{}, fmt.Errorf("look up session: %w", err)
	}
	if len(ts) == 0 {
		return Session{}, Token{}, fmt.Errorf("look up session: token revoked: %w", ErrNotFound)
	}
	return sess, ts[0], nil
}

// DeleteSession ends the session whose ID is id (sign out); an unknown
// one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM ui_sessions WHERE hash = $1`, hashToken(id)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
