package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/store"
)

// uiClient talks to the dashboard like a browser that does not follow
// redirects: it keeps the cookies it is given.
type uiClient struct {
	t       *testing.T
	base    string
	cookies map[string]*http.Cookie
	origin  string // sent as Origin on POSTs when set
}

func newUIClient(t *testing.T, base string) *uiClient {
	return &uiClient{t: t, base: base, cookies: map[string]*http.Cookie{}}
}

func (c *uiClient) do(method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.origin != "" && method == http.MethodPost {
		req.Header.Set("Origin", c.origin)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return resp, string(b)
}

var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// signin signs in with token and returns the answer to the POST.
func (c *uiClient) signin(token, next string) (*http.Response, string) {
	c.t.Helper()
	_, page := c.do("GET", "/ui/signin/", nil, nil)
	m := hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no CSRF field on the sign-in page:\n%s", page)
	}
	return c.do("POST", "/ui/signin/", url.Values{"csrf": {m[1]}, "token": {token}, "next": {next}}, nil)
}

// csrf reads the session's CSRF value from a signed-in page.
func (c *uiClient) csrf() string {
	c.t.Helper()
	_, page := c.do("GET", "/ui/jobs/", nil, nil)
	m := regexp.MustCompile(`<meta name="csrf-token" content="([0-9a-f]+)">`).FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no csrf-token meta on the jobs page:\n%s", page)
	}
	return m[1]
}

func TestUISignedOut(t *testing.T) {
	f := newAPI(t)
	c := newUIClient(t, f.srv.URL)
	for _, tc := range []struct {
		method, path string
		status       int
		location     string // want a redirect here
		contains     string
	}{
		{"GET", "/ui/jobs/", 303, "/ui/signin/?next=%2Fui%2Fjobs%2F", ""},
		{"GET", "/ui/jobs/" + f.job.ID + "/?x=1", 303, "/ui/signin/?next=%2Fui%2Fjobs%2F" + f.job.ID + "%2F%3Fx%3D1", ""},
		{"GET", "/ui/plugins/", 303, "/ui/signin/?next=%2Fui%2Fplugins%2F", ""},
		{"GET", "/ui/agents/", 303, "/ui/signin/?next=%2Fui%2Fagents%2F", ""},
		{"GET", "/ui/", 303, "/ui/jobs/", ""},
		{"GET", "/ui", 307, "/ui/", ""},
		{"GET", "/ui/api/jobs/", 401, "", `"signin":"/ui/signin/"`},
		{"GET", "/ui/api/jobs/" + f.job.ID + "/", 401, "", "signed out"},
		{"POST", "/ui/jobs/" + f.job.ID + "/stop/", 401, "", "You are signed out"},
		{"POST", "/ui/signout/", 401, "", "You are signed out"},
		{"GET", "/ui/jobs/" + f.job.ID + "/console.txt", 303, "/ui/signin/?next=%2Fui%2Fjobs%2F" + f.job.ID + "%2Fconsole.txt", ""},
		{"GET", "/ui/signin/", 200, "", `name="token"`},
		{"GET", "/ui/static/app.css", 200, "", ".bar"},
		{"GET", "/ui/static/job.js", 200, "", "textContent"},
		{"GET", "/ui/static/", 404, "", "No such page"},
		{"GET", "/ui/static/nope.js", 404, "", "404 page not found"},
		{"GET", "/ui/nope/", 404, "", "No such page"},
	} {
		resp, body := c.do(tc.method, tc.path, nil, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d, want %d\n%s", tc.method, tc.path, resp.StatusCode, tc.status, body)
		}
		if loc := resp.Header.Get("Location"); loc != tc.location {
			t.Errorf("%s %s: Location %q, want %q", tc.method, tc.path, loc, tc.location)
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s: body lacks %q:\n%s", tc.method, tc.path, tc.contains, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); tc.status != 307 && !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s %s: Content-Security-Policy %q", tc.method, tc.path, csp)
		}
	}
	if f.job.Status != store.StatusPending {
		t.Fatal("fixture job not pending")
	}
	if j, _ := f.store.GetJob(t.Context(), f.job.ID); j.Status != store.StatusPending {
		t.Errorf("a signed-out stop changed the job: %s", j.Status)
	}
}

func TestUISignin(t *testing.T) {
	f := newAPI(t)
	for _, tc := range []struct {
		name     string
		token    string
		csrf     string // "" takes the form's
		next     string
		status   int
		location string
		message  string
	}{
		{"admin", f.admin, "", "/ui/agents/", 303, "/ui/agents/", ""},
		{"admin with Token prefix", "Token " + f.admin, "", "", 303, "/ui/jobs/", ""},
		{"next off the dashboard", f.admin, "", "//evil.example/ui/", 303, "/ui/jobs/", ""},
		{"next to another site", f.admin, "", "https://evil.example/", 303, "/ui/jobs/", ""},
		{"job token", f.jobTk, "", "", 403, "", "A job&#39;s token cannot open the dashboard"},
		{"unknown token", "syn_0000000000000000000000000000000000000000", "", "", 401, "", "unknown or revoked"},
		{"empty", "", "", "", 400, "", "Enter an access token"},
		{"wrong CSRF", f.admin, "00", "", 403, "", "sent from another site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newUIClient(t, f.srv.URL)
			_, page := c.do("GET", "/ui/signin/", nil, nil)
			csrf := hiddenCSRF.FindStringSubmatch(page)[1]
			if tc.csrf != "" {
				csrf = tc.csrf
			}
			resp, body := c.do("POST", "/ui/signin/", url.Values{"csrf": {csrf}, "token": {tc.token}, "next": {tc.next}}, nil)
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Fatalf("sign in = %d to %q, want %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location, body)
			}
			if !strings.Contains(body, tc.message) {
				t.Errorf("body lacks %q:\n%s", tc.message, body)
			}
			sess := c.cookies[SessionCookie]
			if tc.status != 303 {
				if sess != nil {
					t.Errorf("a refused sign-in set a session cookie")
				}
				if r, _ := c.do("GET", "/ui/jobs/", nil, nil); r.StatusCode != 303 {
					t.Errorf("after a refused sign-in, /ui/jobs/ = %d, want the redirect to sign in", r.StatusCode)
				}
				return
			}
			if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui/" || sess.Secure {
				t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path /ui/, not Secure over http", sess)
			}
			if sess.MaxAge != int(SessionTTL/time.Second) {
				t.Errorf("session cookie Max-Age %d, want %d", sess.MaxAge, int(SessionTTL/time.Second))
			}
			if _, _, err := f.store.LookupSession(t.Context(), sess.Value); err != nil {
				t.Errorf("the session is not in the store: %v", err)
			}
			if r, body := c.do("GET", "/ui/jobs/", nil, nil); r.StatusCode != 200 || !strings.Contains(body, "Sign out") {
				t.Errorf("signed in, /ui/jobs/ = %d:\n%s", r.StatusCode, body)
			}
			if r, _ := c.do("GET", "/ui/signin/?next=/ui/plugins/", nil, nil); r.StatusCode != 303 || r.Header.Get("Location") != "/ui/plugins/" {
				t.Errorf("signed in, the sign-in page = %d to %q, want 303 to /ui/plugins/", r.StatusCode, r.Header.Get("Location"))
			}
		})
	}
}

func TestUISecureCookieOverHTTPS(t *testing.T) {
	f := newAPI(t, func(a *API) { a.Host = "https://synapse.example" })
	c := newUIClient(t, f.srv.URL)
	if resp, body := c.signin(f.admin, ""); resp.StatusCode != 303 {
		t.Fatalf("sign in = %d\n%s", resp.StatusCode, body)
	}
	if s := c.cookies[SessionCookie]; s == nil || !s.Secure {
		t.Errorf("session cookie %+v: want Secure when the public URL is https", s)
	}
}

func TestUISessionEnds(t *testing.T) {
	f := newAPI(t)
	tok, err := f.store.LookupToken(t.Context(), f.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		end  func(c *uiClient)
	}{
		{"sign out", func(c *uiClient) {
			old := c.cookies[SessionCookie]
			resp, _ := c.do("POST", "/ui/signout/", url.Values{"csrf": {c.csrf()}}, nil)
			if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/signin/" {
				t.Fatalf("sign out = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if c.cookies[SessionCookie] != nil {
				t.Errorf("sign out left the cookie")
			}
			c.cookies[SessionCookie] = old // a copy of the cookie is no good either
		}},
		{"expired", func(c *uiClient) {
			id, err := f.store.CreateSession(t.Context(), tok.ID, -time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.cookies[SessionCookie] = &http.Cookie{Name: SessionCookie, Value: id}
		}},
		{"forged", func(c *uiClient) {
			c.cookies[SessionCookie] = &http.Cookie{Name: SessionCookie, Value: strings.Repeat("ab", 32)}
		}},
		{"token revoked (last: the others sign in with it)", func(c *uiClient) {
			if err := f.store.RevokeToken(t.Context(), tok.ID); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newUIClient(t, f.srv.URL)
			if tc.name == "expired" {
				tc.end(c)
			} else {
				if resp, body := c.signin(f.admin, ""); resp.StatusCode != 303 {
					t.Fatalf("sign in = %d\n%s", resp.StatusCode, body)
				}
				tc.end(c)
			}
			if resp, _ := c.do("GET", "/ui/jobs/", nil, nil); resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/signin/") {
				t.Errorf("after the session ended, /ui/jobs/ = %d to %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
			}
			if resp, _ := c.do("GET", "/ui/api/jobs/", nil, nil); resp.StatusCode != 401 {
				t.Errorf("after the session ended, /ui/api/jobs/ = %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestUICSRF(t *testing.T) {
	f := newAPI(t)
	c := newUIClient(t, f.srv.URL)
	if resp, body := c.signin(f.admin, ""); resp.StatusCode != 303 {
		t.Fatalf("sign in = %d\n%s", resp.StatusCode, body)
	}
	csrf := c.csrf()
	stop := "/ui/jobs/" + f.job.ID + "/stop/"
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
		status int
	}{
		{"no CSRF value", url.Values{}, nil, 403},
		{"wrong CSRF value", url.Values{"csrf": {strings.Repeat("0", 64)}}, nil, 403},
		{"another site's Origin", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}, 403},
		{"another session's value", url.Values{"csrf": {csrfFor("other")}}, nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.do("POST", stop, tc.form, tc.header)
			if resp.StatusCode != tc.status || !strings.Contains(body, "refused") && !strings.Contains(body, "CSRF") {
				t.Fatalf("stop = %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			if j, _ := f.store.GetJob(t.Context(), f.job.ID); j.Status != store.StatusPending {
				t.Fatalf("a refused stop stopped the job: %s", j.Status)
			}
		})
	}
	// The Origin of the public URL (a reverse proxy that rewrites Host) is
	// this server too.
	pub := newAPI(t, func(a *API) { a.Host = "https://synapse.example" })
	pc := newUIClient(t, pub.srv.URL)
	pc.origin = "https://synapse.example"
	if resp, body := pc.signin(pub.admin, ""); resp.StatusCode != 303 {
		t.Fatalf("sign in with the public URL's Origin = %d\n%s", resp.StatusCode, body)
	}
	pc.origin = "https://other.example"
	if resp, _ := pc.do("POST", "/ui/signout/", url.Values{"csrf": {pc.csrf()}}, nil); resp.StatusCode != 403 {
		t.Errorf("sign out with another Origin = %d, want 403", resp.StatusCode)
	}
	// The right value, in the header as the scripts send it or in the form.
	resp, body := c.do("POST", stop, url.Values{}, map[string]string{"X-CSRF-Token": csrf, "Origin": f.srv.URL})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/jobs/"+f.job.ID+"/?stop=ok" {
		t.Fatalf("stop = %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if j, _ := f.store.GetJob(t.Context(), f.job.ID); j.Status != store.StatusStopped {
		t.Fatalf("after the stop the job is %s", j.Status)
	}
	resp, _ = c.do("POST", stop, url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/jobs/"+f.job.ID+"/?stop=ended" {
		t.Fatalf("second stop = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestUIEscapes(t *testing.T) {
	const evil = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`
	f := newAPI(t)
	ctx := t.Context()
	p, err := f.store.CreatePlugin(ctx, store.Plugin{Code: "evil", Name: evil, Description: evil})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"code": "evil", "actions": map[string]any{"run": map[string]any{"description": evil}}})
	rel, err := f.store.CreateRelease(ctx, store.Release{PluginID: p.ID, Version: "1.0", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(map[string]string{"text": evil})
	j, err := f.store.CreateJob(ctx, store.Job{ReleaseID: rel.ID, Agent: "local", Action: "run", Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AppendConsole(ctx, j.ID, []string{evil}); err != nil {
		t.Fatal(err)
	}
	c := newUIClient(t, f.srv.URL)
	if resp, body := c.signin(f.admin, ""); resp.StatusCode != 303 {
		t.Fatalf("sign in = %d\n%s", resp.StatusCode, body)
	}
	for _, path := range []string{"/ui/jobs/" + j.ID + "/", "/ui/plugins/", "/ui/plugins/evil/", "/ui/releases/" + strconv.FormatInt(rel.ID, 10) + "/"} {
		resp, body := c.do("GET", path, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d\n%s", path, resp.StatusCode, body)
		}
		if strings.Contains(body, "<script>window") || strings.Contains(body, "<img src=x") {
			t.Errorf("GET %s: the value is in the page unescaped:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;script&gt;window.__xss=1&lt;/script&gt;") {
			t.Errorf("GET %s: the value is not shown escaped:\n%s", path, body)
		}
	}
	resp, body := c.do("GET", "/ui/api/jobs/"+j.ID+"/", nil, nil)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/json" {
		t.Fatalf("GET /ui/api/jobs/ID/ = %d %s", resp.StatusCode, ct)
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("the JSON carries <script> unescaped: %s", body)
	}
	var got struct {
		Console []struct{ Line string } `json:"console"`
		Job     struct{ Params map[string]string }
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Console) != 1 || got.Console[0].Line != evil || got.Job.Params["text"] != evil {
		t.Errorf("the JSON does not give the text back as it was: %v %s", err, body)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", resp.Header.Get("X-Content-Type-Options"))
	}
	resp, body = c.do("GET", "/ui/jobs/"+j.ID+"/console.txt", nil, nil)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/plain; charset=utf-8" || body != evil+"\n" {
		t.Errorf("console.txt = %d %s %q, want the line as plain text", resp.StatusCode, ct, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="`+j.ID+`.log"` {
		t.Errorf("console.txt Content-Disposition %q", cd)
	}
}

func TestUIPages(t *testing.T) {
	f := newAPI(t)
	c := newUIClient(t, f.srv.URL)
	if resp, body := c.signin(f.admin, ""); resp.StatusCode != 303 {
		t.Fatalf("sign in = %d\n%s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		path     string
		status   int
		contains []string
	}{
		{"/ui/jobs/", 200, []string{`<option value="RUNNING">RUNNING</option>`, "/ui/static/jobs.js"}},
		{"/ui/jobs/?status=RUNNING", 200, []string{`<option value="RUNNING" selected>`}},
		{"/ui/jobs/?status=bogus", 400, []string{"status: want one of PENDING, RUNNING"}},
		{"/ui/jobs/" + f.job.ID + "/", 200, []string{"yolo@1.0.0", `data-status="PENDING"`, "&#34;epochs&#34;: 2", `id="stop-form"`}},
		{"/ui/jobs/00000000-0000-0000-0000-000000000000/", 404, []string{"Not found"}},
		{"/ui/jobs/nope/", 404, []string{"Not found"}},
		{"/ui/plugins/", 200, []string{`href="/ui/plugins/yolo/"`, "YOLO"}},
		{"/ui/plugins/yolo/", 200, []string{"1.0.0", "/ui/releases/1/"}},
		{"/ui/plugins/nope/", 404, []string{"Not found"}},
		{"/ui/releases/1/", 200, []string{"yolo@1.0.0", "no zip"}},
		{"/ui/agents/", 200, []string{"local", "1 queued", "connected"}},
	} {
		resp, body := c.do("GET", tc.path, nil, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s = %d, want %d\n%s", tc.path, resp.StatusCode, tc.status, body)
		}
		for _, s := range tc.contains {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s lacks %q:\n%s", tc.path, s, body)
			}
		}
	}
	resp, body := c.do("GET", "/ui/api/jobs/?status=PENDING", nil, nil)
	var list struct {
		Jobs []map[string]any `json:"jobs"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list.Jobs) != 1 || list.Jobs[0]["id"] != f.job.ID {
		t.Errorf("GET /ui/api/jobs/?status=PENDING = %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/ui/api/jobs/?status=bogus", "/ui/api/jobs/?cursor=nope", "/ui/api/jobs/" + f.job.ID + "/?console=-1"} {
		if resp, body := c.do("GET", path, nil, nil); resp.StatusCode != 400 {
			t.Errorf("GET %s = %d, want 400\n%s", path, resp.StatusCode, body)
		}
	}
}

// TestUIAgentsStatus: the agents page shows what GET /agents/ shows, a Ray
// agent whose dashboard does not answer as disconnected with the reason.
func TestUIAgentsStatus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there
	f := newAPI(t, func(a *API) {
		c, err := ray.NewClient(down, ray.WithAddressHint("check the address in --agent gpu=ray:ADDRESS"))
		if err != nil {
			t.Fatal(err)
		}
		a.Agents = append(a.Agents, Agent{ID: 2, Name: "gpu", Kind: "ray"})
		a.Runners = map[string]Runner{"gpu": &RayAgent{Client: c}}
	})
	c := newUIClient(t, f.srv.URL)
	if resp, body := c.signin(f.admin, ""); resp.StatusCode != 303 {
		t.Fatalf("sign in = %d\n%s", resp.StatusCode, body)
	}
	resp, body := c.do("GET", "/ui/agents/", nil, nil)
	for _, want := range []string{`data-status="connected">connected<`, `data-status="disconnected">disconnected<`, "cannot reach the Ray dashboard at http://" + down} {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /ui/agents/ = %d, lacks %q:\n%s", resp.StatusCode, want, body)
		}
	}
}
