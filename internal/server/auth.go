// Package server is `synapse server`, a self-hosted backend that speaks
// the Synapse backend's HTTP API (docs/server-api.md). This file
// is its authentication: which token a request carries, and what that
// token may do.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// TokenFromRequest returns the access token a request carries, in any form
// the Synapse backend's clients send:
//
//	Synapse-Access-Token: Token <t>   (the Python SDK's v1 client)
//	Synapse-Access-Token: <t>         (its v2 client; header names are case-insensitive)
//	Authorization: Token <t>          (DRF user token; Synapse-Tenant is accepted and ignored)
//	Authorization: Bearer <t>
//
// It returns "" when there is none.
func TokenFromRequest(r *http.Request) string {
	if v := strings.TrimSpace(r.Header.Get("Synapse-Access-Token")); v != "" {
		return stripScheme(v, "Token")
	}
	v := strings.TrimSpace(r.Header.Get("Authorization"))
	for _, scheme := range []string{"Token", "Bearer"} {
		if t := stripScheme(v, scheme); t != v {
			return t
		}
	}
	return ""
}

// stripScheme removes "scheme " (case-insensitive) from the front of v.
func stripScheme(v, scheme string) string {
	if len(v) > len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) && v[len(scheme)] == ' ' {
		return strings.TrimSpace(v[len(scheme)+1:])
	}
	return v
}

// Errors of Authenticate, matched with errors.Is; the API answers them
// 401 and 403.
var (
	ErrUnauthenticated = errors.New("authentication credentials were not provided or are not valid")
	ErrForbidden       = errors.New("this token may not do that")
)

// tokenForms are the header forms a token may come in (TokenFromRequest),
// as 401s name them.
const tokenForms = "Synapse-Access-Token: Token TOKEN, Synapse-Access-Token: TOKEN, Authorization: Token TOKEN or Authorization: Bearer TOKEN"

// UnauthenticatedError is Authenticate's error for a request without a
// token it takes (a 401): Missing when it carries none, else the token is
// unknown or revoked. It matches ErrUnauthenticated with errors.Is.
type UnauthenticatedError struct {
	Missing bool
}

func (e *UnauthenticatedError) Error() string {
	if e.Missing {
		return "no access token: send one as " + tokenForms + " (synapse server token create makes an admin token)"
	}
	return "the access token is not valid: no token of this server has it, or it was revoked (a job's token ends with its job): check the token, or make one with synapse server token create; send it as " + tokenForms
}

// Is reports whether target is ErrUnauthenticated.
func (e *UnauthenticatedError) Is(target error) bool { return target == ErrUnauthenticated }

// ForbiddenError is Authenticate's error for a token used outside what it
// may do (a 403): it names the kind of token and what it may do. It
// matches ErrForbidden with errors.Is.
type ForbiddenError struct {
	Kind  string // the token's kind: store.TokenJob
	JobID string // a job token's job
	What  string // the request: "PATCH /jobs/ID/"
}

func (e *ForbiddenError) Error() string {
	if e.Kind == store.TokenJob {
		return fmt.Sprintf("%s: this is the job token of job %s (the SYNAPSE_ACCESS_TOKEN a job runs with): it may only report that job, with PATCH /jobs/%s/ and POST /logs/ of its entries; use an admin token (synapse server token create) for anything else", e.What, e.JobID, e.JobID)
	}
	return fmt.Sprintf("%s: a %s token may not do that: use an admin token (synapse server token create)", e.What, e.Kind)
}

// Is reports whether target is ErrForbidden.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// Tokens looks tokens up; *store.Store implements it.
type Tokens interface {
	LookupToken(ctx context.Context, secret string) (store.Token, error)
}

// Scope is what a request needs: any admin token, or a job's own token
// (for that job's reporting calls: PATCH /jobs/{id}/, POST /logs/).
type Scope struct {
	// JobID, when set, is the job the request concerns; a job token of
	// that job is allowed too.
	JobID string
}

// Authenticate checks the request's token for scope and returns it. An
// absent, unknown or revoked token is an *UnauthenticatedError (errors.Is
// ErrUnauthenticated); a job token used
// outside its job is a *ForbiddenError (errors.Is ErrForbidden).
func Authenticate(ctx context.Context, tokens Tokens, r *http.Request, scope Scope) (store.Token, error) {
	secret := TokenFromRequest(r)
	if secret == "" {
		return store.Token{}, &UnauthenticatedError{Missing: true}
	}
	t, err := tokens.LookupToken(ctx, secret)
	if errors.Is(err, store.ErrNotFound) {
		return store.Token{}, &UnauthenticatedError{}
	}
	if err != nil {
		return store.Token{}, err
	}
	switch t.Kind {
	case store.TokenAdmin:
		return t, nil
	case store.TokenJob:
		if scope.JobID != "" && t.JobID == scope.JobID {
			return t, nil
		}
	}
	return store.Token{}, &ForbiddenError{Kind: t.Kind, JobID: t.JobID, What: r.Method + " " + r.URL.Path}
}
