package backend

// Fakes (httptest) for the error paths a real synapse server does not
// produce: 5xx answers, answers lost after a POST, event streams that drop
// or have no id: lines, answers that echo the token. The happy paths and
// the server's own error answers are in server_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const fakeToken = "syn_0123456789abcdef0123456789abcdef01234567"

const jobJSON = `{"id":"6b1f4f4e-0000-4000-8000-000000000001","status":"running","action":"train","params":{},"meta":null,` +
	`"plugin_release":{"id":3,"plugin":"yolo","version":"1.0"},"agent":2,"created":"2026-01-02T03:04:05.123456+09:00","started":null,"finished":"2026-01-02T03:05:05Z"}`

// fake starts an httptest server with h and a client of it; the server
// counts requests.
func fake(t *testing.T, h http.HandlerFunc) (*Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return newClient(t, srv.URL, fakeToken), &n
}

// lose reads the request and closes the connection without an answer.
func lose(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func TestErrorAnswers(t *testing.T) {
	v2body := `{"error":{"code":"INTERNAL","message":"internal error","details":[]},"meta":{"request_id":"req-v2"}}`
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		call     func(*Client) error
		attempts int32
		check    func(t *testing.T, err error)
	}{
		{
			name: "GET 5xx with a request ID, retried",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(503)
				io.WriteString(w, v2body)
			},
			call:     func(c *Client) error { _, err := c.Jobs(context.Background(), JobsFilter{}); return err },
			attempts: 4,
			check: func(t *testing.T, err error) {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 503 || he.RequestID != "req-v2" || he.Code != "INTERNAL" ||
					err.Error() != "list jobs: internal error (HTTP 503, GET /v2/jobs/, INTERNAL, request ID req-v2): the server failed; try again later, and quote the request ID when reporting it" {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "POST 5xx, not retried, request ID from the header",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-ID", "req-h")
				w.WriteHeader(500)
				io.WriteString(w, "boom\n")
			},
			call: func(c *Client) error {
				_, err := c.Run(context.Background(), "yolo", RunRequest{Action: "train"})
				return err
			},
			attempts: 1,
			check: func(t *testing.T, err error) {
				var he *HTTPError
				if !errors.As(err, &he) || he.RequestID != "req-h" || !strings.HasPrefix(err.Error(), "run plugin yolo action train: boom (HTTP 500, POST /plugins/yolo/run/, request ID req-h)") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "a proxy's HTML page is not printed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				io.WriteString(w, "<html><body>nginx</body></html>")
			},
			call:     func(c *Client) error { _, err := c.Agents(context.Background()); return err },
			attempts: 4,
			check: func(t *testing.T, err error) {
				if !strings.HasPrefix(err.Error(), "list agents: bad gateway (HTTP 502, GET /agents/)") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "GET recovers after 5xx and a lost answer",
			handler: func() http.HandlerFunc {
				var n atomic.Int32
				return func(w http.ResponseWriter, r *http.Request) {
					switch n.Add(1) {
					case 1:
						w.WriteHeader(502)
					case 2:
						lose(w, r)
					case 3:
						w.Header().Set("Retry-After", "0")
						w.WriteHeader(429)
					default:
						io.WriteString(w, jobJSON)
					}
				}
			}(),
			call:     func(c *Client) error { _, err := c.Job(context.Background(), "x"); return err },
			attempts: 4,
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:    "POST whose answer is lost: uncertain, not retried",
			handler: lose,
			call: func(c *Client) error {
				_, err := c.Run(context.Background(), "yolo", RunRequest{Action: "train"})
				return err
			},
			attempts: 1,
			check: func(t *testing.T, err error) {
				var ue *UncertainError
				if !errors.As(err, &ue) || ue.Method != "POST" || ue.Path != "/plugins/yolo/run/" ||
					!strings.HasPrefix(err.Error(), "run plugin yolo action train: the request (POST /plugins/yolo/run/) was sent but its answer was lost: ") ||
					!strings.HasSuffix(err.Error(), "check `synapse plugin job list` before trying again") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:     "stop whose answer is lost",
			handler:  lose,
			call:     func(c *Client) error { _, err := c.Stop(context.Background(), "j1"); return err },
			attempts: 1,
			check: func(t *testing.T, err error) {
				var ue *UncertainError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "`synapse plugin job list`") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:    "publish whose answer is lost",
			handler: lose,
			call: func(c *Client) error {
				_, err := c.PublishRelease(context.Background(), ReleaseUpload{Plugin: "yolo", Version: "2", Zip: []byte("zip")})
				return err
			},
			attempts: 1,
			check: func(t *testing.T, err error) {
				var ue *UncertainError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "check whether release yolo@2 exists") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "POST whose answer does not come before the context ends",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				<-r.Context().Done()
			},
			call: func(c *Client) error {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_, err := c.Run(ctx, "yolo", RunRequest{Action: "train"})
				return err
			},
			attempts: 1,
			check: func(t *testing.T, err error) {
				var ue *UncertainError
				if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:     "GET whose answers are lost: unreachable after the retries",
			handler:  lose,
			call:     func(c *Client) error { _, err := c.Job(context.Background(), "j1"); return err },
			attempts: 4,
			check: func(t *testing.T, err error) {
				var ue *UnreachableError
				if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "get job j1: cannot reach the synapse backend at http://127.0.0.1:") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "DRF field errors",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(400)
				io.WriteString(w, `{"version":["plugin release with this version already exists."],"plugin":["bad"]}`)
			},
			call: func(c *Client) error {
				_, err := c.PublishRelease(context.Background(), ReleaseUpload{Plugin: "yolo", Version: "2"})
				return err
			},
			attempts: 1,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrVersionExists) || err.Error() != "publish release yolo@2: the request was refused (HTTP 400, POST /plugin_releases/)\n  plugin: bad\n  version: plugin release with this version already exists." {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "a 2xx answer that is not JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html>login page</html>")
			},
			call:     func(c *Client) error { _, err := c.Agents(context.Background()); return err },
			attempts: 1,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrNotBackend) || !strings.HasPrefix(err.Error(), "list agents: http://127.0.0.1:") || !strings.HasSuffix(err.Error(), " does not answer like a Synapse backend (GET /agents/ gave an HTML page): give the Synapse server's base URL, such as http://HOST:PORT (is this another service's port?)") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "a 404 that is not JSON from another service (a Ray dashboard): GET /agents/ decides",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, "404: Not Found")
			},
			call:     func(c *Client) error { _, err := c.Job(context.Background(), "j1"); return err },
			attempts: 2,
			check: func(t *testing.T, err error) {
				var nb *NotBackendError
				if !errors.As(err, &nb) || nb.Op != "get job j1" || !strings.Contains(err.Error(), " does not answer like a Synapse backend (GET /agents/ gave HTTP 404)") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "a 404 that is not JSON from a backend (a route it lacks) stays a 404",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/agents/" {
					io.WriteString(w, `{"count": 0, "results": []}`)
					return
				}
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, "<h1>Not Found</h1>")
			},
			call:     func(c *Client) error { _, err := c.Job(context.Background(), "j1"); return err },
			attempts: 2,
			check: func(t *testing.T, err error) {
				if errors.Is(err, ErrNotBackend) || !errors.Is(err, ErrNotFound) {
					t.Errorf("err = %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := fake(t, tt.handler)
			err := tt.call(c)
			tt.check(t, err)
			if got := n.Load(); got != tt.attempts {
				t.Errorf("%d requests, want %d", got, tt.attempts)
			}
		})
	}
}

// TestDecodeShapes reads the shapes another backend may answer with.
func TestDecodeShapes(t *testing.T) {
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jobs/x/":
			io.WriteString(w, jobJSON)
		case "/jobs/x/console_logs/":
			io.WriteString(w, `{"results":[{"message":"a\n"},{"message":"b"}]}`)
		case "/plugin_releases/yolo@1.0/":
			io.WriteString(w, `{"id":4,"plugin":{"id":9,"code":"yolo"},"version":"1.0","config":{},"debug":false,"created":"yesterday"}`)
		}
	})
	j, err := c.Job(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != StatusRunning || j.Agent.ID != 2 || j.Release != (JobRelease{3, "yolo", "1.0"}) || j.Started != nil ||
		j.Completed == nil || !j.Completed.Equal(time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC)) || j.Created.IsZero() || j.Meta != (JobMeta{}) {
		t.Errorf("job = %+v", j)
	}
	lines, err := c.ConsoleLogs(t.Context(), "x")
	if err != nil || !slices.Equal(lines, []string{"a", "b"}) {
		t.Errorf("console logs = %q, %v", lines, err)
	}
	rel, err := c.Release(t.Context(), "yolo", "1.0")
	if err != nil || rel.Plugin != "yolo" || !rel.Created.IsZero() {
		t.Errorf("release = %+v, %v", rel, err)
	}
}

// TestNextLinks: a list's next link is followed on the client's host, by
// its path and query, whatever host it names.
func TestNextLinks(t *testing.T) {
	var tokens []string
	var mu sync.Mutex
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens = append(tokens, r.Header.Get("Synapse-Access-Token"))
		mu.Unlock()
		switch r.URL.Query().Get("page") {
		case "":
			io.WriteString(w, `{"count":3,"next":"https://elsewhere.example/agents/?page=2","results":[{"id":1,"name":"a"}]}`)
		case "2":
			io.WriteString(w, `{"count":3,"next":"/agents/?page=3","results":[{"id":2,"name":"b"}]}`)
		case "3":
			io.WriteString(w, `{"count":3,"next":null,"results":[{"id":3,"name":"c","status":"Connected"}]}`)
		}
	})
	agents, err := c.Agents(t.Context())
	if err != nil || len(agents) != 3 || agents[2].Name != "c" || !agents[2].Connected() {
		t.Fatalf("agents = %+v, %v", agents, err)
	}
	if !slices.Equal(tokens, []string{"Token " + fakeToken, "Token " + fakeToken, "Token " + fakeToken}) {
		t.Errorf("tokens sent = %q", tokens)
	}
}

// sseServer is a fake console log stream of lines "line 1" … "line N".
// Each stream sends at most drops[i] lines (stream i), then ends without
// "complete"; the last stream sends the rest and "complete". With ids it
// numbers its lines and resumes after Last-Event-ID (with key, as
// synapse server does: in the frame's "n" instead of id: lines); without,
// it sends the log from its start each time.
type sseServer struct {
	n     int
	ids   bool
	key   bool
	drops []int

	mu      sync.Mutex
	streams int
	lastIDs []string // the Last-Event-ID of each stream
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stream := s.streams
	s.streams++
	s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "data: {\"type\":\"connected\",\"job_id\":\"j\"}\n\n: heartbeat\n\n")
	from := 1
	if v := r.Header.Get("Last-Event-ID"); s.ids && v != "" {
		fmt.Sscan(v, &from)
		from++
	}
	sent := 0
	for i := from; i <= s.n; i++ {
		if stream < len(s.drops) && sent == s.drops[stream] {
			return // dropped
		}
		inner, _ := json.Marshal(map[string]string{"type": "log", "message": fmt.Sprintf("line %d\n", i)})
		frame := map[string]any{"type": "log", "data": "data: " + string(inner) + "\n\n"}
		if s.key {
			frame["n"] = i
		}
		outer, _ := json.Marshal(frame)
		if s.ids && !s.key {
			fmt.Fprintf(w, "id: %d\n", i)
		}
		fmt.Fprintf(w, "data: %s\n\n", outer)
		http.NewResponseController(w).Flush()
		sent++
	}
	if stream < len(s.drops) {
		return
	}
	io.WriteString(w, "data: {\"type\":\"complete\",\"status\":\"SUCCEEDED\"}\n\n")
}

func TestTailResumes(t *testing.T) {
	tests := []struct {
		name    string
		ids     bool
		key     bool
		drops   []int
		after   int64
		lastIDs []string
	}{
		{"ids, dropped twice", true, false, []int{3, 2}, 0, []string{"", "3", "5"}},
		{"ids, after 2, dropped", true, false, []int{2}, 2, []string{"2", "4"}},
		{"ids, a stream with no line", true, false, []int{3, 0}, 0, []string{"", "3", "3"}},
		{"n keys, dropped twice", true, true, []int{3, 2}, 0, []string{"", "3", "5"}},
		{"n keys, after 2, dropped", true, true, []int{2}, 2, []string{"2", "4"}},
		{"n keys, a stream with no line", true, true, []int{3, 0}, 0, []string{"", "3", "3"}},
		{"no ids, dropped twice", false, false, []int{3, 5}, 0, []string{"", "", ""}},
		{"no ids, after 2, dropped", false, false, []int{4}, 2, []string{"2", ""}},
		{"no ids, no drop", false, false, nil, 0, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sseServer{n: 7, ids: tt.ids, key: tt.key, drops: tt.drops}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := newClient(t, srv.URL, fakeToken)
			lines, err := tail(t.Context(), c, "j", tt.after)
			if err != nil {
				t.Fatal(err)
			}
			var want []Line
			for i := tt.after + 1; i <= 7; i++ {
				want = append(want, Line{Seq: i, Text: fmt.Sprintf("line %d", i)})
			}
			if !slices.Equal(lines, want) {
				t.Errorf("lines = %+v, want %+v", lines, want)
			}
			if !slices.Equal(s.lastIDs, tt.lastIDs) {
				t.Errorf("Last-Event-IDs sent = %q, want %q", s.lastIDs, tt.lastIDs)
			}
		})
	}
}

func TestTailEnds(t *testing.T) {
	sse := func(frames ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			for _, f := range frames {
				io.WriteString(w, f)
			}
		}
	}
	errFn := errors.New("enough")
	tests := []struct {
		name    string
		handler http.HandlerFunc
		fn      func(Line) error
		lines   int
		check   func(t *testing.T, err error)
	}{
		{
			name:    "error frame",
			handler: sse("data: {\"type\":\"log\",\"data\":\"data: {\\\"type\\\":\\\"log\\\",\\\"message\\\":\\\"a\\\\n\\\"}\\n\\n\"}\n\n", "data: {\"type\":\"error\",\"message\":\"job vanished\"}\n\n"),
			lines:   1,
			check: func(t *testing.T, err error) {
				var se *StreamError
				if !errors.As(err, &se) || err.Error() != "tail console log of job j: the backend ended the stream with an error: job vanished" {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:    "inner complete, frames with the message outside, \\r\\n lines",
			handler: sse("data: {\"type\":\"log\",\"message\":\"a\\n\"}\r\n\r\n", "data: plain text\n\n", "data: {\"type\":\"log\",\"data\":\"data: {\\\"type\\\":\\\"complete\\\"}\\n\\n\"}\n\n", "data: {\"type\":\"log\",\"message\":\"never\"}\n\n"),
			lines:   2,
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:    "fn's error is returned as it is",
			handler: sse("data: {\"type\":\"log\",\"message\":\"a\"}\n\n", "data: {\"type\":\"log\",\"message\":\"b\"}\n\n"),
			fn:      func(Line) error { return errFn },
			lines:   0,
			check: func(t *testing.T, err error) {
				if err != errFn {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "not an event stream",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, "<html></html>")
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), `did not answer with an event stream (Content-Type "text/html")`) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "429 with Retry-After, then a stream",
			handler: func() http.HandlerFunc {
				var n atomic.Int32
				return func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1) == 1 {
						w.Header().Set("Retry-After", "0.01")
						w.WriteHeader(429)
						return
					}
					sse("data: {\"type\":\"complete\"}\n\n")(w, r)
				}
			}(),
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "a silent stream is reopened",
			handler: func() http.HandlerFunc {
				var n atomic.Int32
				return func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1) == 1 {
						w.Header().Set("Content-Type", "text/event-stream")
						http.NewResponseController(w).Flush()
						<-r.Context().Done()
						return
					}
					sse("data: {\"type\":\"complete\"}\n\n")(w, r)
				}
			}(),
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "gives up after the outage window",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(503)
			},
			check: func(t *testing.T, err error) {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 503 || !strings.HasPrefix(err.Error(), "tail console log of job j: no working stream for 200ms, giving up: ") {
					t.Errorf("err = %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fake(t, tt.handler)
			c.tailIdle, c.tailOutage = 200*time.Millisecond, 200*time.Millisecond
			var n int
			fn := tt.fn
			if fn == nil {
				fn = func(Line) error { n++; return nil }
			}
			start := time.Now()
			err := c.TailConsole(t.Context(), "j", 0, fn)
			tt.check(t, err)
			if n != tt.lines {
				t.Errorf("%d lines passed, want %d", n, tt.lines)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestRedactHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://user:syn_secretpw@127.0.0.1:1", "http://user:***@127.0.0.1:1"},
		{"https://syn_tok@host/p@th", "https://***@host/p@th"},
		{"http://a:b@c@host:8080/x?y=@", "http://a:***@host:8080/x?y=@"},
		{"http://host:8080/a@b", "http://host:8080/a@b"},
		{"host:8080", "host:8080"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactHost(tt.in); got != tt.want {
			t.Errorf("RedactHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		host, token string
		opts        []Option
		want        string // the error, or the client's Host
	}{
		{"https://api.synapse.sh/", fakeToken, nil, "https://api.synapse.sh"},
		{" HTTP://127.0.0.1:8080/prefix/ ", fakeToken, nil, "http://127.0.0.1:8080/prefix"},
		{"localhost:8080", fakeToken, nil, `invalid host "localhost:8080": it has no http:// or https://: want an http:// or https:// URL`},
		{"ftp://host", fakeToken, nil, `the scheme "ftp" is not http or https`},
		{"http://", fakeToken, nil, "it has no host name"},
		{"http://u:p@host", fakeToken, nil, "it holds credentials"},
		{"http://user:syn_secretpw@127.0.0.1:1", fakeToken, nil, `invalid host "http://user:***@127.0.0.1:1": it holds credentials`},
		{"http://host/?q=1", fakeToken, nil, "it has a query or a fragment"},
		{"http://host:99999", fakeToken, nil, `the port "99999" is not a port number`},
		{"http://host", " ", nil, "no access token: run `synapse login`"},
		{"http://host", "syn_a b", nil, "the access token syn_**** has spaces or control characters"},
		{"http://host", fakeToken, []Option{WithTenant("t\n1")}, "the tenant **** has spaces or control characters"},
	}
	for _, tt := range tests {
		c, err := New(tt.host, tt.token, tt.opts...)
		switch {
		case err != nil && !strings.HasPrefix(err.Error(), tt.want) && !strings.Contains(err.Error(), tt.want):
			t.Errorf("New(%q) = %v, want %q", tt.host, err, tt.want)
		case err == nil && c.Host() != tt.want:
			t.Errorf("New(%q).Host() = %q, want %q", tt.host, c.Host(), tt.want)
		}
		var he *HostError
		if errors.As(err, &he) && he.ExitCode() != 2 {
			t.Errorf("a bad host is not a usage error")
		}
	}
	if _, err := New("http://u:syn_secretpw@host", fakeToken); err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Errorf("the host's password is not masked: %v", err)
	}
	if _, err := New("http://host", ""); !errors.Is(err, ErrNoToken) {
		t.Errorf("no token: %v", err)
	}
}

// TestHeaders: the headers every request carries, as the Python SDK sends
// them.
func TestHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		io.WriteString(w, `{"count":0,"next":null,"results":[]}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL, fakeToken, WithTenant("acme"), WithUserAgent("synapse-go/v1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Agents(t.Context()); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"Synapse-Access-Token": "Token " + fakeToken, "Synapse-Tenant": "Token acme", "User-Agent": "synapse-go/v1.2.3", "Accept": "application/json"} {
		if got.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, got.Get(k), v)
		}
	}
	c, _ = New(srv.URL, fakeToken)
	if _, err := c.Agents(t.Context()); err != nil || !strings.HasPrefix(got.Get("User-Agent"), "synapse-go/") || got.Get("Synapse-Tenant") != "" {
		t.Errorf("default headers: %v, %v", got, err)
	}
}

// TestRedirects: the token never follows a redirect to another host.
func TestRedirects(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Synapse-Access-Token") != "" {
			leaked.Store(true)
		}
		io.WriteString(w, jobJSON)
	}))
	defer other.Close()
	c, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusFound)
	})
	_, err := c.Job(t.Context(), "x")
	if err == nil || !strings.Contains(err.Error(), "not following it with the access token") || !strings.HasPrefix(err.Error(), "get job x: the backend redirected to http://localhost:") || leaked.Load() {
		t.Errorf("redirect to another host: %v (token sent: %v)", err, leaked.Load())
	}
}
