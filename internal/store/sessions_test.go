package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			_, tok, err := s.CreateToken(ctx, "admin", TokenAdmin, "")
			if err != nil {
				t.Fatal(err)
			}
			id, err := s.CreateSession(ctx, tok.ID, time.Hour)
			if err != nil || len(id) != 64 {
				t.Fatalf("CreateSession = %q, %v", id, err)
			}
			sess, got, err := s.LookupSession(ctx, id)
			if err != nil || got.ID != tok.ID || sess.TokenID != tok.ID || sess.ExpiresAt.Sub(sess.CreatedAt) != time.Hour {
				t.Fatalf("LookupSession = %+v %+v %v", sess, got, err)
			}
			var stored int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ui_sessions WHERE hash = $1`, id).Scan(&stored); err != nil || stored != 0 {
				t.Errorf("the session ID itself is stored (%d rows, %v): want only its hash", stored, err)
			}
			expired, err := s.CreateSession(ctx, tok.ID, -time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			other, err := s.CreateSession(ctx, tok.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				id   string
			}{{"expired", expired}, {"unknown", strings.Repeat("0", 64)}, {"empty", ""}} {
				if _, _, err := s.LookupSession(ctx, tc.id); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s session: %v, want ErrNotFound", tc.name, err)
				}
			}
			if err := s.DeleteSession(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.LookupSession(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("deleted session: %v, want ErrNotFound", err)
			}
			if _, _, err := s.LookupSession(ctx, other); err != nil {
				t.Errorf("deleting one session ended another: %v", err)
			}
			if err := s.RevokeToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.LookupSession(ctx, other); !errors.Is(err, ErrNotFound) {
				t.Errorf("session of a revoked token: %v, want ErrNotFound", err)
			}
		})
	}
}
