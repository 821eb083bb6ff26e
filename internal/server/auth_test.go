package server

import (
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		header, value, want string
	}{
		{"Synapse-Access-Token", "Token syn_abc", "syn_abc"},
		{"SYNAPSE-ACCESS-TOKEN", "syn_abc", "syn_abc"},
		{"synapse-access-token", "token  syn_abc ", "syn_abc"},
		{"Authorization", "Token syn_abc", "syn_abc"},
		{"Authorization", "Bearer syn_abc", "syn_abc"},
		{"Authorization", "Basic dXNlcjpwYXNz", ""},
		{"Authorization", "syn_abc", ""},
		{"X-Other", "syn_abc", ""},
		{"Synapse-Access-Token", "Tokensyn_abc", "Tokensyn_abc"}, // no scheme: the raw form
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/agents/", nil)
		r.Header.Set(tt.header, tt.value)
		if got := TokenFromRequest(r); got != tt.want {
			t.Errorf("%s: %q → %q, want %q", tt.header, tt.value, got, tt.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := t.Context()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin, _, err := s.CreateToken(ctx, "admin", store.TokenAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := s.CreateToken(ctx, "job", store.TokenJob, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	revoked, tok, err := s.CreateToken(ctx, "old", store.TokenAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		secret string
		scope  Scope
		want   error
	}{
		{"admin anywhere", admin, Scope{}, nil},
		{"admin on a job", admin, Scope{JobID: "job-1"}, nil},
		{"job token on its job", job, Scope{JobID: "job-1"}, nil},
		{"job token on another job", job, Scope{JobID: "job-2"}, ErrForbidden},
		{"job token elsewhere", job, Scope{}, ErrForbidden},
		{"revoked", revoked, Scope{}, ErrUnauthenticated},
		{"unknown", "syn_nope", Scope{}, ErrUnauthenticated},
		{"none", "", Scope{}, ErrUnauthenticated},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("PATCH", "/jobs/job-1/", nil)
		if tt.secret != "" {
			r.Header.Set("Synapse-Access-Token", "Token "+tt.secret)
		}
		_, err := Authenticate(ctx, s, r, tt.scope)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		// A 403 says what kind of token it is and what it may do.
		const forbidden = "PATCH /jobs/job-1/: this is the job token of job job-1 (the SYNAPSE_ACCESS_TOKEN a job runs with): it may only report that job, with PATCH /jobs/job-1/ and POST /logs/ of its entries; use an admin token (synapse server token create) for anything else"
		if tt.want == ErrForbidden && err.Error() != forbidden {
			t.Errorf("%s: %q, want %q", tt.name, err, forbidden)
		}
	}
}
