package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseEvent is one event of a stream: the line number ("n" of a log
// frame, "" for other frames) and its data line.
type sseEvent struct {
	id, data string
}

// follow opens the job's console log stream (query: "?after=N" or "")
// and returns its events on a channel, closed when the stream ends. A
// line the Python CLI would print as it is (one not empty and not
// "data: …", such as id: or comment lines) fails the test.
func (f *apiFixture) follow(t *testing.T, lastID string, query ...string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/jobs/"+f.job.ID+"/tail_console_logs/"+strings.Join(query, ""), nil)
	req.Header.Set("Synapse-Access-Token", f.admin) // the raw v2 form
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan sseEvent, 100)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
				var n struct{ N *int64 }
				if json.Unmarshal([]byte(ev.data), &n) == nil && n.N != nil {
					ev.id = strconv.FormatInt(*n.N, 10)
				}
			default:
				t.Errorf("stream line %q: the Python CLI would print it", line)
			}
		}
	}()
	return resp, ch
}

// message parses a log frame the way the Python CLI does (twice).
func message(t *testing.T, data string) (typ, msg string) {
	t.Helper()
	var outer struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	if err := json.Unmarshal([]byte(data), &outer); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	if outer.Type != "log" {
		return outer.Type, ""
	}
	inner, ok := strings.CutPrefix(outer.Data, "data: ")
	if !ok {
		t.Fatalf("log frame data %q lacks the nested data: prefix", outer.Data)
	}
	var in struct{ Type, Message string }
	if err := json.Unmarshal([]byte(strings.TrimRight(inner, "\n")), &in); err != nil || in.Type != "log" {
		t.Fatalf("inner frame %q: %v", inner, err)
	}
	return "log", in.Message
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

func TestTailConsoleLogs(t *testing.T) {
	f := newAPI(t)
	if _, err := f.store.AppendConsole(t.Context(), f.job.ID, []string{"before"}); err != nil {
		t.Fatal(err)
	}
	resp, ch := f.follow(t, "")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	if typ, _ := message(t, next(t, ch).data); typ != "connected" {
		t.Fatalf("first frame %q, want connected", typ)
	}
	if ev := next(t, ch); ev.id != "1" {
		t.Errorf("first line id %q, want 1", ev.id)
	} else if _, msg := message(t, ev.data); msg != "before\n" {
		t.Errorf("first line %q", msg)
	}
	// Lines written while following arrive; then the job ends.
	if _, err := f.store.AppendConsole(t.Context(), f.job.ID, []string{`a "quoted" line`, "ünïcode"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a \"quoted\" line\n", "ünïcode\n"} {
		if _, msg := message(t, next(t, ch).data); msg != want {
			t.Errorf("line %q, want %q", msg, want)
		}
	}
	if status, _ := f.call(t, "PATCH", "/jobs/"+f.job.ID+"/", f.jobTk, `{"status":"FAILED","console_logs":["last words"]}`); status != 200 {
		t.Fatalf("finish the job: %d", status)
	}
	if err := f.store.CloseConsole(t.Context(), f.job.ID); err != nil { // as its agent does
		t.Fatal(err)
	}
	if _, msg := message(t, next(t, ch).data); msg != "last words\n" {
		t.Errorf("line written with the final status %q", msg)
	}
	var done struct{ Type, Status string }
	if err := json.Unmarshal([]byte(next(t, ch).data), &done); err != nil || done.Type != "complete" || done.Status != "FAILED" {
		t.Errorf("last frame = %+v, %v", done, err)
	}
	if _, open := <-ch; open {
		t.Error("the stream went on after complete")
	}

	// Resume after line 2: lines 3 and 4, then complete at once.
	_, ch = f.follow(t, "2")
	next(t, ch) // connected
	var got []string
	for ev := range ch {
		typ, msg := message(t, ev.data)
		got = append(got, typ+":"+ev.id+":"+strings.TrimSpace(msg))
	}
	if want := []string{"log:3:ünïcode", "log:4:last words", "complete::"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("resumed stream = %q, want %q", got, want)
	}

	// The same with ?after=3 (the header wins over the query).
	for _, tt := range []struct{ header, query, want string }{
		{"", "?after=3", "log:4:last words|complete::"},
		{"3", "?after=1", "log:4:last words|complete::"},
		{"", "?after=0", "log:1:before|log:2:a \"quoted\" line|log:3:ünïcode|log:4:last words|complete::"},
	} {
		_, ch = f.follow(t, tt.header, tt.query)
		next(t, ch) // connected
		got = nil
		for ev := range ch {
			typ, msg := message(t, ev.data)
			got = append(got, typ+":"+ev.id+":"+strings.TrimSpace(msg))
		}
		if strings.Join(got, "|") != tt.want {
			t.Errorf("Last-Event-ID %q, query %q: stream = %q, want %q", tt.header, tt.query, got, tt.want)
		}
	}
}

func TestTailLimits(t *testing.T) {
	f := newAPI(t, func(a *API) { a.MaxFollowers = 2 })
	for range 2 {
		_, ch := f.follow(t, "")
		next(t, ch) // connected: counted
	}
	req0, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/jobs/"+f.job.ID+"/tail_console_logs/", nil)
	req0.Header.Set("Synapse-Access-Token", f.admin)
	resp, err := http.DefaultClient.Do(req0)
	if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third follower: %v %v, want 429 with Retry-After", resp.StatusCode, err)
	}
	if status, v := f.call(t, "GET", "/jobs/"+f.job.ID+"/tail_console_logs/", f.jobTk, ""); status != 403 {
		t.Errorf("job token: %d %v", status, v)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/jobs/"+f.job.ID+"/tail_console_logs/", nil)
	req.Header.Set("Synapse-Access-Token", f.admin)
	req.Header.Set("Last-Event-ID", "abc")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("bad Last-Event-ID: %v %v", resp.StatusCode, err)
	}
	if status, v := f.call(t, "GET", "/jobs/"+f.job.ID+"/tail_console_logs/?after=-1", f.admin, ""); status != 400 || !strings.Contains(fmt.Sprint(v), "after") {
		t.Errorf("bad after: %d %v", status, v)
	}
}

// TestTailDropsStalledFollower: a follower that stops reading loses its
// slot once a frame has waited writeTimeout for it.
func TestTailDropsStalledFollower(t *testing.T) {
	defer func(d time.Duration) { writeTimeout = d }(writeTimeout)
	writeTimeout = 300 * time.Millisecond
	var api *API
	f := newAPI(t, func(a *API) { api = a })
	// More than the kernel's socket buffers hold.
	line := strings.Repeat("x", 1023)
	batch := make([]string, 1000)
	for i := range batch {
		batch[i] = line
	}
	for range 24 {
		if _, err := f.store.AppendConsole(t.Context(), f.job.ID, batch); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /jobs/%s/tail_console_logs/ HTTP/1.1\r\nHost: x\r\nSynapse-Access-Token: %s\r\n\r\n", f.job.ID, f.admin)
	count := func() int {
		api.tails.mu.Lock()
		defer api.tails.mu.Unlock()
		return api.tails.n[f.job.ID]
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() == 0 { // connected
		if time.Now().After(deadline) {
			t.Fatal("the follower never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for count() != 0 { // never reads: dropped
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("a follower that does not read still holds its slot")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleGrace: a follower of a job whose agent is here waits for the
// agent to close the log however late; a job no agent here follows ends
// its followers consoleGrace after its end.
func TestConsoleGrace(t *testing.T) {
	a := &API{Runners: map[string]Runner{"local": &ProcessAgent{}}}
	for agent, want := range map[string]time.Duration{"local": agentGrace, "gone": consoleGrace} {
		if got := a.consoleGrace(agent); got != want {
			t.Errorf("consoleGrace(%q) = %v, want %v", agent, got, want)
		}
	}
}
