package server

// The dashboard at /ui/ (docs/dashboard.md): server-rendered pages
// (html/template) with small vanilla scripts that poll the session-
// authenticated JSON routes under /ui/api/ for live values. Everything is
// embedded (go:embed ui): no CDN, no build step.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

//go:embed ui
var uiFiles embed.FS

// Dashboard session settings.
const (
	// SessionCookie holds the session ID; the store keeps only its
	// SHA-256 (store.CreateSession).
	SessionCookie = "synapse_session"
	// signinCookie holds the sign-in form's CSRF value (double submit)
	// until the sign-in.
	signinCookie = "synapse_signin"
	// SessionTTL is how long a dashboard session lasts from its sign-in.
	SessionTTL = 12 * time.Hour
	// uiConsoleBatch is the most console lines one poll of the job page
	// returns (it polls again at once while there are more).
	uiConsoleBatch = 5000
	// uiLogBatch is the most log entries one poll of the job page returns.
	uiLogBatch = 1000
)

// ui is the dashboard's handler state.
type ui struct {
	api   *API
	pages map[string]*template.Template
	mux   *http.ServeMux

	schemaMu sync.Mutex
	schemas  map[string]releaseActions // by release SHA-256
}

// releaseActions is what a release binary's `actions` command said.
type releaseActions struct {
	actions []protocol.ActionInfo
	err     string
}

// uiHandler returns the dashboard's routes, all under /ui/.
func (a *API) uiHandler() http.Handler {
	u := &ui{api: a, pages: map[string]*template.Template{}, schemas: map[string]releaseActions{}}
	funcs := template.FuncMap{
		"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }, // common.js shows it in local time
		"bytes": func(n int64) string { return bytesText(uint64(max(n, 0))) },
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12]
			}
			return s
		},
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(uiFiles, "ui/layout.html"))
	for _, name := range []string{"signin", "jobs", "job", "plugins", "plugin", "release", "agents", "error"} {
		u.pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(uiFiles, "ui/"+name+".html"))
	}
	static, _ := fs.Sub(uiFiles, "ui/static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/static/{file}", func(w http.ResponseWriter, r *http.Request) { files.ServeHTTP(w, r) }) // files only, no listing
	m.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/jobs/", http.StatusSeeOther)
	})
	m.HandleFunc("GET /ui/signin/{$}", u.signinForm)
	m.HandleFunc("POST /ui/signin/{$}", u.signin)
	m.HandleFunc("POST /ui/signout/{$}", u.session(u.signout))
	m.HandleFunc("GET /ui/jobs/{$}", u.session(u.jobsPage))
	m.HandleFunc("GET /ui/jobs/{id}/{$}", u.session(u.jobPage))
	m.HandleFunc("POST /ui/jobs/{id}/stop/{$}", u.session(u.stopJob))
	m.HandleFunc("GET /ui/jobs/{id}/console.txt", u.session(u.consoleText))
	m.HandleFunc("GET /ui/plugins/{$}", u.session(u.pluginsPage))
	m.HandleFunc("GET /ui/plugins/{code}/{$}", u.session(u.pluginPage))
	m.HandleFunc("GET /ui/releases/{id}/{$}", u.session(u.releasePage))
	m.HandleFunc("GET /ui/agents/{$}", u.session(u.agentsPage))
	m.HandleFunc("GET /ui/api/jobs/{$}", u.session(u.apiJobs))
	m.HandleFunc("GET /ui/api/jobs/{id}/{$}", u.session(u.apiJob))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, http.StatusNotFound, "No such page: "+r.URL.Path)
	})
	u.mux = m
	return u
}

// ServeHTTP sets the dashboard's security headers and serves its routes.
func (u *ui) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		h.Set("Cache-Control", "no-store")
	}
	u.mux.ServeHTTP(w, r)
}

// uiSession is the signed-in user of a request.
type uiSession struct {
	id    string // the cookie's value
	token store.Token
	csrf  string
}

type sessionKey struct{}

// csrfFor is the CSRF value of a session: an HMAC of a fixed label keyed
// by the session ID, so it needs no storage and a page of another site,
// which cannot read the cookie, cannot compute it.
func csrfFor(sessionID string) string {
	m := hmac.New(sha256.New, []byte(sessionID))
	m.Write([]byte("synapse-ui-csrf"))
	return hex.EncodeToString(m.Sum(nil))
}

// session wraps a handler that needs a signed-in user: without a live
// session a GET of a page redirects to the sign-in page (coming back
// after), a GET of /ui/api/ is 401 JSON, anything else 401. A POST must
// carry the session's CSRF value (form field csrf or header
// X-CSRF-Token) and no Origin of another site, else 403.
func (u *ui) session(h func(http.ResponseWriter, *http.Request, uiSession)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s uiSession
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			if _, tok, err := u.api.Store.LookupSession(r.Context(), c.Value); err == nil && tok.Kind == store.TokenAdmin {
				s = uiSession{id: c.Value, token: tok, csrf: csrfFor(c.Value)}
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				u.errorPage(w, r, http.StatusInternalServerError, "The dashboard could not read its sessions; see the server's log.")
				return
			}
		}
		if s.id == "" {
			switch {
			case strings.HasPrefix(r.URL.Path, "/ui/api/"):
				writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "signed out: sign in again", "signin": "/ui/signin/"})
			case r.Method == http.MethodGet || r.Method == http.MethodHead:
				http.Redirect(w, r, "/ui/signin/?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			default:
				u.errorPage(w, r, http.StatusUnauthorized, "You are signed out: sign in again, then retry.")
			}
			return
		}
		if r.Method == http.MethodPost {
			if !u.sameOrigin(r) {
				u.errorPage(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused.")
				return
			}
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				u.errorPage(w, r, http.StatusForbidden, "The form's security check (CSRF) failed: reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)), s)
	}
}

// sameOrigin reports whether r's Origin header, when it has one, is this
// server: the request's Host, or the host of the server's public URL
// (--public-url: behind a reverse proxy that rewrites Host).
func (u *ui) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	ou, err := url.Parse(o)
	if err != nil || ou.Host == "" {
		return false
	}
	if ou.Host == r.Host {
		return true
	}
	pu, err := url.Parse(u.api.Host)
	return err == nil && pu.Host != "" && ou.Host == pu.Host
}

// secure reports whether cookies must be Secure: the request came over
// TLS, or the server's public URL is https.
func (u *ui) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(u.api.Host, "https://")
}

// safeNext is the page to go to after signing in: a /ui/ path of this
// server, else the jobs page.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui/signin/") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/jobs/"
	}
	return next
}

// signinForm is GET /ui/signin/: the form, or, already signed in, the
// page of next.
func (u *ui) signinForm(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if _, tok, err := u.api.Store.LookupSession(r.Context(), c.Value); err == nil && tok.Kind == store.TokenAdmin {
			http.Redirect(w, r, safeNext(r.FormValue("next")), http.StatusSeeOther)
			return
		}
	}
	u.renderSignin(w, r, http.StatusOK, "")
}

// renderSignin shows the sign-in form with a fresh double-submit CSRF
// value (cookie and hidden field).
func (u *ui) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	v := hex.EncodeToString(raw)
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: v, Path: "/ui/signin/", HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	u.render(w, r, status, "signin", map[string]any{"Title": "Sign in", "CSRF": v, "Next": safeNext(r.FormValue("next")), "Error": msg})
}

// signin is POST /ui/signin/: an admin token starts a session.
func (u *ui) signin(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(signinCookie)
	if err != nil || !u.sameOrigin(r) || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		u.renderSignin(w, r, http.StatusForbidden, "The sign-in form expired or was sent from another site: try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	secret = strings.TrimSpace(stripScheme(secret, "Token"))
	if secret == "" {
		u.renderSignin(w, r, http.StatusBadRequest, "Enter an access token (syn_…): the one `synapse server` printed on its first start, or one from `synapse server token create`.")
		return
	}
	tok, err := u.api.Store.LookupToken(r.Context(), secret)
	switch {
	case errors.Is(err, store.ErrNotFound):
		u.renderSignin(w, r, http.StatusUnauthorized, "That access token is unknown or revoked.")
		return
	case err != nil:
		u.renderSignin(w, r, http.StatusInternalServerError, "The server could not check the token; see its log.")
		return
	case tok.Kind != store.TokenAdmin:
		u.renderSignin(w, r, http.StatusForbidden, "A job's token cannot open the dashboard: use an admin token (`synapse server token create`).")
		return
	}
	id, err := u.api.Store.CreateSession(r.Context(), tok.ID, SessionTTL)
	if err != nil {
		u.renderSignin(w, r, http.StatusInternalServerError, "The server could not start a session; see its log.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: "", Path: "/ui/signin/", MaxAge: -1, HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/ui/", HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL / time.Second)})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// signout is POST /ui/signout/: the session ends (deleted from the store).
func (u *ui) signout(w http.ResponseWriter, r *http.Request, s uiSession) {
	if err := u.api.Store.DeleteSession(r.Context(), s.id); err != nil {
		u.errorPage(w, r, http.StatusInternalServerError, "The server could not end the session; see its log.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/signin/", http.StatusSeeOther)
}

// render executes page name with data plus the session's CSRF value.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, data map[string]any) {
	if s, ok := r.Context().Value(sessionKey{}).(uiSession); ok {
		data["SignedIn"], data["SessionCSRF"], data["TokenName"] = true, s.csrf, s.token.Name
	}
	var b bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&b, "layout.html", data); err != nil {
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (u *ui) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	u.render(w, r, status, "error", map[string]any{"Title": http.StatusText(status), "Status": status, "Message": msg})
}

// fail answers an error of the store or the API on a page.
func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.Is(err, store.ErrNotFound):
		u.errorPage(w, r, http.StatusNotFound, "Not found: "+r.URL.Path)
	case errors.As(err, &ae):
		u.errorPage(w, r, ae.status, ae.message)
	default:
		u.errorPage(w, r, http.StatusInternalServerError, "Internal error; see the server's log.")
	}
}

// jobStatuses are the statuses the jobs page filters by.
var jobStatuses = []string{store.StatusPending, store.StatusRunning, store.StatusSucceeded, store.StatusFailed, store.StatusStopped}

func (u *ui) jobsPage(w http.ResponseWriter, r *http.Request, _ uiSession) {
	status := r.URL.Query().Get("status")
	if status != "" && !contains(jobStatuses, status) {
		u.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("status: want one of %s (got %q)", strings.Join(jobStatuses, ", "), status))
		return
	}
	u.render(w, r, http.StatusOK, "jobs", map[string]any{"Title": "Jobs", "Status": status, "Statuses": jobStatuses, "Cursor": r.URL.Query().Get("cursor")})
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// apiJobs is GET /ui/api/jobs/?status=&cursor=: a page of 50 jobs,
// newest first, as GET /v2/jobs/ has them, and the next page's cursor.
func (u *ui) apiJobs(w http.ResponseWriter, r *http.Request, _ uiSession) {
	q := r.URL.Query()
	if s := q.Get("status"); s != "" && !contains(jobStatuses, s) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "status: want one of " + strings.Join(jobStatuses, ", ")})
		return
	}
	jobs, next, err := u.api.Store.ListJobs(r.Context(), store.JobFilter{Status: q.Get("status"), After: q.Get("cursor"), Limit: 50})
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "cursor: no such job"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "internal error"})
		return
	}
	out := make([]map[string]any, 0, len(jobs))
	for _, j := range jobs {
		m, err := u.api.jobJSON(r, j)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "internal error"})
			return
		}
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out, "next": next, "now": time.Now().UTC().Format(time.RFC3339Nano)})
}

// apiJob is GET /ui/api/jobs/{id}/?console=N&logs=M: the job as GET
// /v2/jobs/{id}/ has it, its console lines after line N (at most
// uiConsoleBatch) and its log entries after entry M (at most uiLogBatch),
// with more true when either was cut.
func (u *ui) apiJob(w http.ResponseWriter, r *http.Request, _ uiSession) {
	id := r.PathValue("id")
	q := r.URL.Query()
	after := func(name string) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n >= 0
	}
	consoleAfter, ok1 := after("console")
	logsAfter, ok2 := after("logs")
	if !ok1 || !ok2 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "console, logs: want a line or entry number"})
		return
	}
	if _, err := uuid.Parse(id); err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "not found"})
		return
	}
	// The status is read before the lines, so a final status comes with
	// every line written before it.
	j, err := u.api.Store.GetJob(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "not found"})
		return
	}
	var m map[string]any
	if err == nil {
		m, err = u.api.jobJSON(r, j)
	}
	var lines []store.ConsoleLine
	if err == nil {
		lines, err = u.api.Store.Console(r.Context(), id, consoleAfter, uiConsoleBatch)
	}
	var entries []store.LogEntry
	if err == nil {
		entries, err = u.api.Store.Logs(r.Context(), id, logsAfter, uiLogBatch)
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "internal error"})
		return
	}
	type lineJSON struct {
		Seq  int64  `json:"seq"`
		Line string `json:"line"`
	}
	cl := make([]lineJSON, len(lines))
	for i, l := range lines {
		cl[i] = lineJSON{l.Seq, l.Line}
	}
	logs := make([]map[string]any, len(entries))
	for i, e := range entries {
		logs[i] = map[string]any{"id": e.ID, "event": e.Event, "data": e.Data, "datetime": e.Datetime, "level": e.Level, "step": e.Step, "file": e.File}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"job": m, "console": cl, "logs": logs,
		"more":           len(lines) == uiConsoleBatch || len(entries) == uiLogBatch,
		"console_closed": j.ConsoleClosed,
		"now":            time.Now().UTC().Format(time.RFC3339Nano),
	})
}

func (u *ui) jobPage(w http.ResponseWriter, r *http.Request, _ uiSession) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	j, err := u.api.Store.GetJob(r.Context(), id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	rel, err := u.api.Store.GetRelease(r.Context(), j.ReleaseID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p, err := u.api.Store.GetPluginByID(r.Context(), rel.PluginID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "job", map[string]any{"Title": "Job " + j.ID, "Job": j, "Release": rel, "Plugin": p,
		"Stopped": r.URL.Query().Get("stop"), "Params": prettyJSON(j.Params)})
}

// consoleText is GET /ui/jobs/{id}/console.txt: the whole console log
// as it is now, a line each, as a download (JOB.log).
func (u *ui) consoleText(w http.ResponseWriter, r *http.Request, _ uiSession) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	if _, err := u.api.Store.GetJob(r.Context(), id); err != nil {
		u.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.log"`)
	var after int64
	for {
		lines, err := u.api.Store.Console(r.Context(), id, after, uiConsoleBatch)
		if err != nil {
			return // the client went away, or the store did: the download ends short
		}
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l.Line)
			b.WriteByte('\n')
			after = l.Seq
		}
		if _, err := io.WriteString(w, b.String()); err != nil || len(lines) < uiConsoleBatch {
			return
		}
	}
}

// stopJob is POST /ui/jobs/{id}/stop/: the same stop as POST
// /v2/jobs/{id}/stop/, then back to the job page (?stop=ok, or
// ?stop=ended when it had already ended).
func (u *ui) stopJob(w http.ResponseWriter, r *http.Request, _ uiSession) {
	id := r.PathValue("id")
	rec := &statusRecorder{header: http.Header{}}
	err := u.api.stop(rec, r)
	var ae *apiError
	switch {
	case err == nil:
		http.Redirect(w, r, "/ui/jobs/"+id+"/?stop=ok", http.StatusSeeOther)
	case errors.As(err, &ae) && ae.status == http.StatusConflict:
		http.Redirect(w, r, "/ui/jobs/"+id+"/?stop=ended", http.StatusSeeOther)
	default:
		u.fail(w, r, err)
	}
}

// pluginRow is a plugin on the plugins page.
type pluginRow struct {
	Plugin   store.Plugin
	Releases int
	Latest   *store.Release
}

func (u *ui) pluginsPage(w http.ResponseWriter, r *http.Request, _ uiSession) {
	ps, err := u.api.Store.ListPlugins(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	rows := make([]pluginRow, len(ps))
	for i, p := range ps {
		rels, total, err := u.api.Store.ListReleases(r.Context(), store.ReleaseFilter{PluginID: p.ID, Limit: 1})
		if err != nil {
			u.fail(w, r, err)
			return
		}
		rows[i] = pluginRow{Plugin: p, Releases: total}
		if len(rels) > 0 {
			rows[i].Latest = &rels[0]
		}
	}
	u.render(w, r, http.StatusOK, "plugins", map[string]any{"Title": "Plugins", "Plugins": rows})
}

// releaseRow is a release on a plugin's page.
type releaseRow struct {
	store.Release
	Actions []string
}

func (u *ui) pluginPage(w http.ResponseWriter, r *http.Request, _ uiSession) {
	p, err := u.api.Store.GetPlugin(r.Context(), r.PathValue("code"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	rels, _, err := u.api.Store.ListReleases(r.Context(), store.ReleaseFilter{PluginID: p.ID})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	rows := make([]releaseRow, len(rels))
	for i, rel := range rels {
		rows[i] = releaseRow{Release: rel, Actions: actionNames(rel.Config)}
	}
	u.render(w, r, http.StatusOK, "plugin", map[string]any{"Title": "Plugin " + p.Code, "Plugin": p, "Releases": rows})
}

// actionNames are the action names of a release config, sorted.
func actionNames(config json.RawMessage) []string {
	var names []string
	for _, a := range configActions(config) {
		names = append(names, a.Name)
	}
	return names
}

// actionView is an action on a release's page.
type actionView struct {
	Name        string
	Description string
	Config      string // its config.yaml entry, as JSON
	Params      []paramView
	Schema      string // the params JSON Schema, pretty
}

// paramView is one top-level param of an action's schema.
type paramView struct {
	Name, Type, Default, Description string
	Required                         bool
}

func (u *ui) releasePage(w http.ResponseWriter, r *http.Request, _ uiSession) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		u.fail(w, r, store.ErrNotFound)
		return
	}
	rel, err := u.api.Store.GetRelease(r.Context(), id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p, err := u.api.Store.GetPluginByID(r.Context(), rel.PluginID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	var cfg struct {
		Actions map[string]json.RawMessage `json:"actions"`
	}
	_ = json.Unmarshal(rel.Config, &cfg)
	info := u.releaseActions(r.Context(), rel)
	byName := map[string]protocol.ActionInfo{}
	for _, a := range info.actions {
		byName[a.Name] = a
	}
	var actions []actionView
	for _, name := range actionNames(rel.Config) {
		av := actionView{Name: name, Config: prettyJSON(cfg.Actions[name])}
		var entry struct {
			Description string `json:"description"`
		}
		_ = json.Unmarshal(cfg.Actions[name], &entry)
		av.Description = entry.Description
		if ai, ok := byName[name]; ok {
			if av.Description == "" {
				av.Description = ai.Description
			}
			if len(ai.Schema) > 0 {
				av.Schema, av.Params = prettyJSON(ai.Schema), schemaParams(ai.Schema)
			}
		}
		actions = append(actions, av)
	}
	u.render(w, r, http.StatusOK, "release", map[string]any{"Title": p.Code + "@" + rel.Version, "Plugin": p, "Release": rel,
		"Actions": actions, "SchemaError": info.err, "Config": prettyJSON(rel.Config)})
}

// releaseActions asks the release's binary for its actions and their
// params schemas (`synapse-plugin actions`, in a process group of its
// own, killed after the params check's timeout), once per release
// content.
func (u *ui) releaseActions(ctx context.Context, rel store.Release) releaseActions {
	u.schemaMu.Lock()
	v, ok := u.schemas[rel.SHA256]
	u.schemaMu.Unlock()
	if ok {
		return v
	}
	if u.api.Releases == nil || rel.SHA256 == "" {
		v.err = "this release has no zip, so no binary to ask for its params schemas"
		return v
	}
	dir, err := u.api.Releases.Unpacked(rel)
	if err != nil {
		v.err = "the release could not be unpacked: " + err.Error()
		return v
	}
	cctx, cancel := context.WithTimeout(ctx, u.api.paramsTimeout())
	defer cancel()
	cmd := exec.CommandContext(cctx, filepath.Join(dir, worker.BinaryName), "actions")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	if _, err := runOwnGroup(cmd); err != nil || json.Unmarshal(out.Bytes(), &v.actions) != nil {
		v.err = fmt.Sprintf("the release's binary did not list its actions (%s actions), so the params schemas are unknown", worker.BinaryName)
		if ctx.Err() != nil {
			return v // not cached: the request went away
		}
	}
	u.schemaMu.Lock()
	u.schemas[rel.SHA256] = v
	u.schemaMu.Unlock()
	return v
}

// schemaParams reads the top-level properties of a params JSON Schema.
func schemaParams(schema json.RawMessage) []paramView {
	var s struct {
		Properties map[string]struct {
			Type        any    `json:"type"`
			Default     any    `json:"default"`
			Description string `json:"description"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if json.Unmarshal(schema, &s) != nil {
		return nil
	}
	out := make([]paramView, 0, len(s.Properties))
	for name, p := range s.Properties {
		pv := paramView{Name: name, Description: p.Description, Required: contains(s.Required, name)}
		if p.Type != nil {
			b, _ := json.Marshal(p.Type)
			pv.Type = strings.Trim(string(b), `"`)
		}
		if p.Default != nil {
			b, _ := json.Marshal(p.Default)
			pv.Default = string(b)
		}
		out = append(out, pv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// agentView is an agent on the agents page.
type agentView struct {
	agentStatus
	Running, Queued []store.Job
}

func (u *ui) agentsPage(w http.ResponseWriter, r *http.Request, _ uiSession) {
	statuses := u.api.agentStatuses(r.Context())
	out := make([]agentView, len(statuses))
	for i, ag := range statuses {
		out[i].agentStatus = ag
		for _, st := range []string{store.StatusRunning, store.StatusPending} {
			jobs, _, err := u.api.Store.ListJobs(r.Context(), store.JobFilter{Status: st, Agent: ag.Name, Limit: 1000})
			if err != nil {
				u.fail(w, r, err)
				return
			}
			if st == store.StatusRunning {
				out[i].Running = jobs
			} else {
				for k := len(jobs) - 1; k >= 0; k-- { // oldest first: the queue's order
					out[i].Queued = append(out[i].Queued, jobs[k])
				}
			}
		}
	}
	u.render(w, r, http.StatusOK, "agents", map[string]any{"Title": "Agents", "Agents": out})
}

// prettyJSON indents raw JSON for display, with its strings as text
// (\u003c becomes <, which the template escapes for HTML); "" for none.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return string(raw)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if enc.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
