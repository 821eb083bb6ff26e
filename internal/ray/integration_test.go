//go:build integration

package ray

// Integration tests against a real Ray head. They need the dashboard URL in
// SYNAPSE_TEST_RAY_ADDRESS (for example http://127.0.0.1:8265); `make
// test-integration` provides it. Without it they skip, except under CI=true,
// where they fail.

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/retry"
)

// integrationClient returns a client of the test cluster, or skips.
func integrationClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		msg := "SYNAPSE_TEST_RAY_ADDRESS is not set: run `make test-integration`, or start a Ray head and run " +
			"SYNAPSE_TEST_RAY_ADDRESS=http://127.0.0.1:8265 go test -tags integration -run Integration ./internal/ray"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c, err := NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// itCtx bounds one integration test.
func itCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// uniqueID returns a submission id no other run uses.
func uniqueID(tag string) string {
	return fmt.Sprintf("synapse-it-%s-%d", tag, time.Now().UnixNano())
}

// submit submits and fails the test on error.
func submit(t *testing.T, ctx context.Context, c *Client, req SubmitRequest) *SubmitResult {
	t.Helper()
	res, err := c.Submit(ctx, req)
	if err != nil {
		t.Fatalf("Submit(%q): %v", req.Entrypoint, err)
	}
	if res.ID != req.SubmissionID || res.Existing {
		t.Fatalf("Submit = %+v, want new job %q", res, req.SubmissionID)
	}
	return res
}

// tailAll tails the job to its end and returns the log and the number of
// chunks.
func tailAll(t *testing.T, ctx context.Context, c *Client, id string) string {
	t.Helper()
	var b strings.Builder
	if err := c.Tail(ctx, id, func(chunk string) error {
		b.WriteString(chunk)
		return nil
	}); err != nil {
		t.Fatalf("Tail(%s): %v\nreceived so far:\n%s", id, err, b.String())
	}
	return b.String()
}

var numberedLine = regexp.MustCompile(`^line-(\d+)$`)

// checkNumberedLines asserts that the log's "line-N" lines are exactly
// line-1 ... line-n, in order, each once. Ray adds lines of its own (such as
// "Running entrypoint for job …"), which are ignored.
func checkNumberedLines(t *testing.T, log string, n int) {
	t.Helper()
	next := 1
	for _, l := range strings.Split(log, "\n") {
		m := numberedLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		got, _ := strconv.Atoi(m[1])
		if got != next {
			t.Fatalf("found line-%d where line-%d was expected (duplicate or missing line)\nlog:\n%s", got, next, log)
		}
		next++
	}
	if next != n+1 {
		t.Fatalf("the log has line-1 .. line-%d, want .. line-%d\nlog:\n%s", next-1, n, log)
	}
}

// waitStatus polls the job until cond holds.
func waitStatus(t *testing.T, ctx context.Context, c *Client, id string, cond func(synapse.JobStatus) bool) *Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		job, err := c.Job(ctx, id)
		if err != nil {
			t.Fatalf("Job(%s): %v", id, err)
		}
		if cond(job.Status) {
			return job
		}
		if err := retry.Sleep(ctx, 200*time.Millisecond); err != nil {
			t.Fatalf("job %s still %s: %v", id, job.Status, err)
		}
	}
}

func TestIntegrationVersion(t *testing.T) {
	c := integrationClient(t)
	v, err := c.Version(itCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if v.RayVersion != "2.60.0" || v.Version == "" || v.SessionName == "" {
		t.Fatalf("Version = %+v, want ray_version 2.60.0", v)
	}
	t.Logf("version %+v", *v)
}

func TestIntegrationSubmitTailDuplicate(t *testing.T) {
	t.Parallel()
	c := integrationClient(t)
	ctx := itCtx(t)
	id := uniqueID("lines")
	entrypoint := `for i in $(seq 1 50); do echo line-$i; done`
	submit(t, ctx, c, SubmitRequest{Entrypoint: entrypoint, SubmissionID: id, Metadata: map[string]string{"test": "lines"}})

	log := tailAll(t, ctx, c, id)
	checkNumberedLines(t, log, 50)

	job, err := c.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != synapse.JobSucceeded || job.Type != "SUBMISSION" || job.SubmissionID != id || job.Entrypoint != entrypoint ||
		job.Metadata["test"] != "lines" || job.DriverExitCode == nil || *job.DriverExitCode != 0 || job.StartTime == 0 || job.EndTime < job.StartTime {
		t.Errorf("Job = %+v", job)
	}

	// The same id and entrypoint again: an idempotent retry.
	res, err := c.Submit(ctx, SubmitRequest{Entrypoint: entrypoint, SubmissionID: id})
	if err != nil || *res != (SubmitResult{ID: id, Existing: true}) {
		t.Fatalf("resubmit = %+v, %v", res, err)
	}
	// The same id with another entrypoint: a conflict.
	_, err = c.Submit(ctx, SubmitRequest{Entrypoint: "echo other", SubmissionID: id})
	var de *DuplicateJobError
	if !errors.As(err, &de) || de.ID != id || de.ExistingEntrypoint != entrypoint {
		t.Fatalf("conflicting resubmit: %T %v", err, err)
	}

	// The job is listed, and only submission jobs are.
	jobs, err := c.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, j := range jobs {
		if j.Type != "SUBMISSION" {
			t.Errorf("Jobs returned a %s job", j.Type)
		}
		if i > 0 && j.StartTime > jobs[i-1].StartTime {
			t.Errorf("Jobs not newest first at %d", i)
		}
		found = found || j.SubmissionID == id
	}
	if !found {
		t.Errorf("job %s not in Jobs()", id)
	}

	// The stored log matches the tailed one.
	logs, err := c.Logs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	checkNumberedLines(t, logs, 50)
}

func TestIntegrationFailingJobAndDelete(t *testing.T) {
	t.Parallel()
	c := integrationClient(t)
	ctx := itCtx(t)
	id := uniqueID("exit3")
	submit(t, ctx, c, SubmitRequest{Entrypoint: "echo about to fail; exit 3", SubmissionID: id})
	job, err := c.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != synapse.JobFailed || job.DriverExitCode == nil || *job.DriverExitCode != 3 || job.Message == "" {
		t.Fatalf("Job = %+v", job)
	}
	t.Logf("failed job: message %q, error_type %q", job.Message, job.ErrorType)

	if err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = c.Job(ctx, id)
	var he *HTTPError
	if !errors.Is(err, ErrJobNotFound) || !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("Job after Delete: %v", err)
	}
	t.Logf("after delete: %v", err)
	if err := c.Tail(ctx, id, func(string) error { return nil }); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("Tail after Delete: %v", err)
	}
}

func TestIntegrationStopAndWait(t *testing.T) {
	t.Parallel()
	c := integrationClient(t)
	ctx := itCtx(t)
	id := uniqueID("sleep")
	submit(t, ctx, c, SubmitRequest{Entrypoint: "sleep 600", SubmissionID: id})
	waitStatus(t, ctx, c, id, func(s synapse.JobStatus) bool { return s == synapse.JobRunning })

	// A running job cannot be deleted; the server's reason is shown.
	err := c.Delete(ctx, id)
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 500 || !strings.Contains(he.Body, "non-terminal") {
		t.Errorf("Delete of a running job: %v", err)
	} else {
		t.Logf("delete of a running job: %v", err)
	}

	start := time.Now()
	job, err := c.StopAndWait(ctx, id, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != synapse.JobStopped {
		t.Fatalf("Job = %+v", job)
	}
	t.Logf("stopped in %v: message %q, exit code %v", time.Since(start), job.Message, job.DriverExitCode)
	stopped, err := c.Stop(ctx, id)
	if err != nil || stopped {
		t.Errorf("second Stop = %v, %v", stopped, err)
	}
}

func TestIntegrationPackage(t *testing.T) {
	t.Parallel()
	c := integrationClient(t)
	ctx := itCtx(t)
	nanos := time.Now().UnixNano()
	content := fmt.Sprintf("hello from synapse %d", nanos)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, content+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("_ray_pkg_%016x.zip", uint64(nanos))

	for i, want := range []bool{true, false} {
		uploaded, err := c.EnsurePackage(ctx, name, buf.Bytes())
		if err != nil || uploaded != want {
			t.Fatalf("EnsurePackage call %d = %v, %v; want uploaded=%v", i+1, uploaded, err, want)
		}
	}

	id := uniqueID("pkg")
	submit(t, ctx, c, SubmitRequest{
		Entrypoint:   "cat hello.txt",
		SubmissionID: id,
		RuntimeEnv:   map[string]any{"working_dir": "gcs://" + name},
	})
	log := tailAll(t, ctx, c, id)
	if !strings.Contains(log, content+"\n") {
		t.Fatalf("log lacks %q:\n%s", content, log)
	}
	job, err := c.Job(ctx, id)
	if err != nil || job.Status != synapse.JobSucceeded || job.RuntimeEnv["working_dir"] != "gcs://"+name {
		t.Fatalf("Job = %+v, %v", job, err)
	}
}

// cutProxy forwards TCP connections to the dashboard. The first connection
// that carries a log tail request is cut (closed abruptly, without a
// WebSocket close frame) after cutAfter bytes of server-to-client traffic
// following that request.
type cutProxy struct {
	ln        net.Listener
	target    string
	cutAfter  int
	claimed   atomic.Bool
	tailConns atomic.Int32
	cuts      atomic.Int32
	mu        sync.Mutex
	conns     []net.Conn
	wg        sync.WaitGroup
}

func startCutProxy(t *testing.T, target string, cutAfter int) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cutAfter: cutAfter}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *cutProxy) handle(client net.Conn) {
	p.track(client)
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(server)
	closeBoth := func() {
		client.Close()
		server.Close()
	}
	var isTarget atomic.Bool
	done := make(chan struct{})
	go func() { // client -> server
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if bytes.Contains(buf[:n], []byte("/logs/tail")) {
					p.tailConns.Add(1)
					if p.claimed.CompareAndSwap(false, true) {
						isTarget.Store(true)
					}
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					closeBoth()
					return
				}
			}
			if err != nil {
				if tc, ok := server.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	sent := 0
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if isTarget.Load() {
				if room := p.cutAfter - sent; n >= room {
					_, _ = client.Write(buf[:room])
					p.cuts.Add(1)
					closeBoth()
					break
				}
				sent += n
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				closeBoth()
				break
			}
		}
		if err != nil {
			closeBoth()
			break
		}
	}
	<-done
}

func TestIntegrationTailReconnect(t *testing.T) {
	t.Parallel()
	direct := integrationClient(t)
	host := strings.TrimPrefix(strings.TrimPrefix(direct.Address(), "http://"), "https://")
	if strings.HasPrefix(direct.Address(), "https://") || strings.Contains(host, "/") {
		t.Skipf("the cutting proxy needs a plain http://host:port address, not %s", direct.Address())
	}
	proxy := startCutProxy(t, host, 2000)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := NewClient("http://"+proxy.ln.Addr().String(), WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := itCtx(t)

	id := uniqueID("reconnect")
	// 2000 lines, with pauses so that the job is still running when the
	// first connection is cut.
	submit(t, ctx, direct, SubmitRequest{
		SubmissionID: id,
		Entrypoint:   `for i in $(seq 1 2000); do echo line-$i; if [ $((i % 500)) -eq 0 ]; then sleep 1; fi; done`,
	})
	log := tailAll(t, ctx, c, id)
	checkNumberedLines(t, log, 2000)
	if proxy.cuts.Load() != 1 || proxy.tailConns.Load() < 2 {
		t.Fatalf("proxy cut %d connections and saw %d tail connections; want 1 cut and a reconnect", proxy.cuts.Load(), proxy.tailConns.Load())
	}
	t.Logf("tail connections through the proxy: %d; log %d bytes", proxy.tailConns.Load(), len(log))
	job, err := direct.Job(ctx, id)
	if err != nil || job.Status != synapse.JobSucceeded {
		t.Fatalf("Job = %+v, %v", job, err)
	}
}
