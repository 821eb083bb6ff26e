package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
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
	return f.followWith(t, http.DefaultClient, lastID, query...)
}

// followWith is follow through client.
func (f *apiFixture) followWith(t *testing.T, client *http.Client, lastID string, query ...string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/jobs/"+f.job.ID+"/tail_console_logs/"+strings.Join(query, ""), nil)
	req.Header.Set("Synapse-Access-Token", f.admin) // the raw v2 form
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
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
	count := func() int { return api.tails.count(f.job.ID) }
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

// TestAppendLogFrame: a log frame is encoded without a map per line, to
// the same bytes as before (dataFrame of maps, the wire format the Python
// CLI parses).
func TestAppendLogFrame(t *testing.T) {
	for _, line := range []string{
		"", "plain", `a "quoted" \ line`, "tab\there", "ünïcode ✓", "<html> & more", "\x00\x1f control",
		"invalid \xff utf-8", "line\u2028separator", strings.Repeat("x", 5000),
	} {
		inner, _ := json.Marshal(map[string]string{"type": "log", "message": line + "\n"})
		want := dataFrame(map[string]any{"type": "log", "n": int64(42), "data": "data: " + string(inner) + "\n\n"})
		if got := string(appendLogFrame([]byte("prefix"), 42, line)); got != "prefix"+want {
			t.Errorf("line %q:\n got %q\nwant %q", line, got, "prefix"+want)
		}
	}
}

// collect reads a stream's events until it ends: the log frames' line
// numbers and messages, in order, and the status of its complete frame
// (the stream's last event, "" when it had none). A frame after complete,
// or one of another type, is an error.
func collect(t *testing.T, ch <-chan sseEvent) (ids []int64, msgs []string, status string) {
	t.Helper()
	for ev := range ch {
		if status != "" {
			t.Errorf("frame %q after complete", ev.data)
			continue
		}
		typ, msg := message(t, ev.data)
		switch typ {
		case "connected":
			if len(ids) > 0 {
				t.Errorf("connected frame after %d lines", len(ids))
			}
		case "log":
			n, _ := strconv.ParseInt(ev.id, 10, 64)
			ids, msgs = append(ids, n), append(msgs, msg)
		case "complete":
			var c struct{ Status string }
			_ = json.Unmarshal([]byte(ev.data), &c)
			status = c.Status
		default:
			t.Errorf("frame type %q: %q", typ, ev.data)
		}
	}
	return ids, msgs, status
}

// checkLines fails unless ids are the line numbers first…last, each once
// and in order, and msgs the lines line(n) of them.
func checkLines(t *testing.T, who string, ids []int64, msgs []string, first, last int64, line func(int64) string) {
	t.Helper()
	if want := last - first + 1; int64(len(ids)) != want {
		t.Errorf("%s: %d lines, want %d (%d…%d)", who, len(ids), want, first, last)
	}
	for i, n := range ids {
		if want := first + int64(i); n != want {
			t.Errorf("%s: line %d of the stream is n=%d, want %d (every line once, in order)", who, i, n, want)
			return
		}
		if msgs[i] != line(n)+"\n" {
			t.Errorf("%s: line %d = %q, want %q", who, n, msgs[i], line(n))
			return
		}
	}
}

// hubGone waits until the job has no follower and no hub reader runs any
// more: the hub's memory is free.
func hubGone(t *testing.T, api *API, job string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		api.tails.mu.Lock()
		hubs := len(api.tails.m)
		api.tails.mu.Unlock()
		if hubs == 0 && api.tails.count(job) == 0 && api.tails.readers.Load() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the last follower left: %d hubs, %d followers, %d readers, want none", hubs, api.tails.count(job), api.tails.readers.Load())
		}
	}
}

// TestTailManyFollowers: 100 followers of a job whose log grows while
// they follow, half of them joining midway, each get every line exactly
// once and in order, then complete with the final status, and only after
// the log was closed; then the job's hub is gone.
func TestTailManyFollowers(t *testing.T) {
	var api *API
	f := newAPI(t, func(a *API) { api = a })
	const followers, batches, per = 100, 40, 25
	line := func(n int64) string { return fmt.Sprintf(`line %d "ü" <%d>`, n, n) }
	var seq int64
	appendBatch := func() {
		lines := make([]string, per)
		for i := range lines {
			seq++
			lines[i] = line(seq)
		}
		if _, err := f.store.AppendConsole(t.Context(), f.job.ID, lines); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		ids    []int64
		msgs   []string
		status string
	}
	results := make([]chan result, followers)
	start := func(i int) {
		_, ch := f.follow(t, "")
		next(t, ch) // connected: counted
		results[i] = make(chan result, 1)
		go func() {
			var r result
			r.ids, r.msgs, r.status = collect(t, ch)
			results[i] <- r
		}()
	}
	for i := range followers / 2 {
		start(i)
	}
	for b := range batches {
		appendBatch()
		if b == batches/2 {
			for i := followers / 2; i < followers; i++ {
				start(i)
			}
		}
	}
	if n := api.tails.count(f.job.ID); n != followers {
		t.Errorf("%d followers counted, want %d", n, followers)
	}
	// The job ends, as its agent ends it: status first, then a last line,
	// then the log closed. No follower may end before that line.
	if _, err := f.store.UpdateJob(t.Context(), f.job.ID, store.JobUpdate{Status: store.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateJob(t.Context(), f.job.ID, store.JobUpdate{Status: store.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	appendBatch()
	if err := f.store.CloseConsole(t.Context(), f.job.ID); err != nil {
		t.Fatal(err)
	}
	for i, ch := range results {
		select {
		case r := <-ch:
			checkLines(t, fmt.Sprintf("follower %d", i), r.ids, r.msgs, 1, seq, line)
			if r.status != store.StatusSucceeded {
				t.Errorf("follower %d: complete status %q, want SUCCEEDED", i, r.status)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("follower %d: no complete within 30s", i)
		}
	}
	hubGone(t, api, f.job.ID)
}

// TestTailCompleteWaitsForClose: a job that has ended but whose agent (one
// of this server) has not closed its log keeps its followers: lines still
// come, and complete only after the close.
func TestTailCompleteWaitsForClose(t *testing.T) {
	var api *API
	f := newAPI(t, func(a *API) {
		api = a
		a.Runners = map[string]Runner{"local": &ProcessAgent{}} // the agent of the job: agentGrace
	})
	_, ch := f.follow(t, "")
	next(t, ch) // connected
	if _, err := f.store.UpdateJob(t.Context(), f.job.ID, store.JobUpdate{Status: store.StatusFailed}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AppendConsole(t.Context(), f.job.ID, []string{"written after the end"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.id != "1" {
		t.Fatalf("after the end: frame %q, want line 1", ev.data)
	}
	if err := f.store.CloseConsole(t.Context(), f.job.ID); err != nil {
		t.Fatal(err)
	}
	ids, _, status := collect(t, ch)
	if len(ids) != 0 || status != store.StatusFailed {
		t.Errorf("after the close: lines %v, complete %q; want complete FAILED only", ids, status)
	}
	hubGone(t, api, f.job.ID)
}

// TestTailSlowFollower: with a ring smaller than the log, a follower that
// stops reading while the log grows, and one that joins late resuming from
// an old line, read what the ring no longer holds from the store and then
// join the live feed: each gets every line once, in order, and complete.
func TestTailSlowFollower(t *testing.T) {
	defer func(n int) { ringBytes = n }(ringBytes)
	ringBytes = 64 << 10
	var api *API
	f := newAPI(t, func(a *API) { api = a })
	pad := strings.Repeat("x", 1000)
	line := func(n int64) string { return fmt.Sprintf("%06d %s", n, pad) }
	var seq int64
	appendLines := func(k int) {
		lines := make([]string, k)
		for i := range lines {
			seq++
			lines[i] = line(seq)
		}
		if _, err := f.store.AppendConsole(t.Context(), f.job.ID, lines); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		ids    []int64
		msgs   []string
		status string
	}
	collectTo := func(ch <-chan sseEvent) <-chan result {
		out := make(chan result, 1)
		go func() {
			var r result
			r.ids, r.msgs, r.status = collect(t, ch)
			out <- r
		}()
		return out
	}
	// The slow follower: a small receive buffer, and its events not read
	// (the channel fills) while the log grows by far more than the socket
	// buffers hold (the server's send buffer is at most 4 MiB).
	small := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}).DialContext}}
	_, slowCh := f.followWith(t, small, "")
	next(t, slowCh)
	for range 8 {
		appendLines(1000)
	}
	for deadline := time.Now().Add(30 * time.Second); !hubAt(api, f.job.ID, seq); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hub did not read the lines within 30s")
		}
	}
	// The hub is 8 MB past the slow follower's last line in its socket:
	// read again, it catches up from the store.
	before := api.tails.fromStore.Load()
	slow := collectTo(slowCh)
	for deadline := time.Now().Add(30 * time.Second); api.tails.fromStore.Load() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow follower read nothing from the store within 30s: it was never behind the ring?")
		}
	}
	// The late one resumes after line 10, long gone from the ring.
	before = api.tails.fromStore.Load()
	_, lateCh := f.follow(t, "10")
	next(t, lateCh)
	late := collectTo(lateCh)
	for deadline := time.Now().Add(30 * time.Second); api.tails.fromStore.Load() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the follower resuming after line 10 read nothing from the store within 30s")
		}
	}
	appendLines(100) // lines for both once they are live
	if _, err := f.store.UpdateJob(t.Context(), f.job.ID, store.JobUpdate{Status: store.StatusStopped}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CloseConsole(t.Context(), f.job.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		res   <-chan result
		first int64
	}{{"slow follower", slow, 1}, {"late follower (Last-Event-ID: 10)", late, 11}} {
		select {
		case r := <-tt.res:
			checkLines(t, tt.name, r.ids, r.msgs, tt.first, seq, line)
			if r.status != store.StatusStopped {
				t.Errorf("%s: complete %q, want STOPPED", tt.name, r.status)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: no complete within 60s", tt.name)
		}
	}
	hubGone(t, api, f.job.ID)
}

// hubAt reports whether the job's hub has read up to line seq.
func hubAt(api *API, job string, seq int64) bool {
	api.tails.mu.Lock()
	h := api.tails.m[job]
	api.tails.mu.Unlock()
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last >= seq
}
