package server

// The synapse server benchmarks (docs/benchmarks.md, "synapse server").
// Each starts the server in-process with Serve (nothing else of the
// package is used: the Config and the HTTP API are the interface),
// publishes the plugin at testdata/benchplugin over the API and drives it
// there with the admin token Serve prints on its first start. Each has a
// "direct" sub-benchmark, the baseline of the same run: the same plugin
// binary started by the benchmark itself, no server. The "postgres"
// sub-benchmarks run when SYNAPSE_TEST_POSTGRES_DSN is set, each in a
// schema of its own, and say so when it is not.
//
//	scripts/bench-server.sh   (make bench; starts PostgreSQL with scripts/postgres.sh)
//	go test -run '^$' -bench '^BenchmarkServer' -benchtime 1x -timeout 0 ./internal/server/ [-args -server.runs=10 …]
//
// Nothing here runs under plain go test but TestBenchPlugin, which checks
// the fixture builds and paces its lines.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

var (
	benchRuns      = flag.Int("server.runs", 50, "BenchmarkServerRun: jobs run one after another")
	benchRate      = flag.Int("server.rate", 10000, "BenchmarkServerTail: lines a second the job prints")
	benchSeconds   = flag.Float64("server.seconds", 10, "BenchmarkServerTail: how long the job prints")
	benchFollowers = flag.Int("server.followers", 100, "BenchmarkServerTail: SSE followers of the job")
	benchJobs      = flag.Int("server.jobs", 1000, "BenchmarkServerQueue: jobs queued")
	benchMaxJobs   = flag.Int("server.max-jobs", 4, "BenchmarkServerQueue: jobs at once (Config.MaxJobs)")
)

const benchConfig = `{"code":"benchplugin","name":"Server Benchmark","actions":{"hello":{},"lines":{},"wait":{}}}`

// BenchmarkServerRun: POST /plugins/{code}/run/ of a trivial action (it
// prints one line and returns) to the job being RUNNING and to its first
// console line, jobs run one after another on an idle server.
func BenchmarkServerRun(b *testing.B) {
	rel := benchRelease(b)
	b.Run("direct", func(b *testing.B) {
		defer startLoad().report(b)
		var start, first, exit, validate []time.Duration
		for i := 0; i < b.N; i++ {
			rel.mustDirect(b, "hello", "{}") // warm the page cache
			for r := 0; r < *benchRuns; r++ {
				d := rel.mustDirect(b, "hello", "{}")
				start, first, exit = append(start, d.start), append(first, d.firstLine), append(exit, d.exit)
				t0 := time.Now()
				cmd := exec.Command(rel.bin, "validate", "hello")
				cmd.Stdin = strings.NewReader("{}")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("validate: %v %s", err, out)
				}
				validate = append(validate, time.Since(t0))
			}
		}
		reportPercentiles(b, "start", start, 50, 95)
		reportPercentiles(b, "first-line", first, 50, 95)
		reportPercentiles(b, "exit", exit, 50, 95)
		reportPercentiles(b, "validate", validate, 50, 95)
		setBaseline("run/first-line", percentile(first, 50))
		setBaseline("run/validate+start", percentile(validate, 50)+percentile(start, 50))
		b.Logf("plugin binary run directly, %d runs: exec → started p50 %s; → first line p50 %s p95 %s; → exit p50 %s; `validate hello` exec p50 %s",
			len(first), ms(percentile(start, 50)), ms(percentile(first, 50)), ms(percentile(first, 95)), ms(percentile(exit, 50)), ms(percentile(validate, 50)))
	})
	benchStores(b, func(b *testing.B, config func(*testing.B) Config) {
		defer startLoad().report(b)
		s := startBenchServer(b, config(b))
		s.publish(b, rel.zip)
		s.wait(b, s.run(b, "hello", "{}").ID, time.Minute) // the first run unpacks the release
		var post, running, first, sse, emitted []time.Duration
		for i := 0; i < b.N; i++ {
			for r := 0; r < *benchRuns; r++ {
				m := s.measureRun(b)
				post, running, first, sse, emitted = append(post, m.post), append(running, m.running), append(first, m.firstLine), append(sse, m.sseFirst), append(emitted, m.emitted)
			}
		}
		reportPercentiles(b, "post", post, 50, 95)
		reportPercentiles(b, "running", running, 50, 95)
		reportPercentiles(b, "first-line", first, 50, 95)
		reportPercentiles(b, "sse-first-line", sse, 50, 95)
		reportPercentiles(b, "emitted", emitted, 50, 95)
		ratio(b, "first-line/direct", percentile(first, 50), "run/first-line")
		ratio(b, "running/validate+start", percentile(running, 50), "run/validate+start")
		b.Logf("%s, %d runs: POST answered p50 %s p95 %s; → RUNNING p50 %s p95 %s; → first console line (GET console_logs, polled every ms) p50 %s p95 %s; → first line on tail_console_logs (opened after the POST) p50 %s p95 %s; → the action printed its line p50 %s p95 %s",
			s.store, len(post), ms(percentile(post, 50)), ms(percentile(post, 95)), ms(percentile(running, 50)), ms(percentile(running, 95)),
			ms(percentile(first, 50)), ms(percentile(first, 95)), ms(percentile(sse, 50)), ms(percentile(sse, 95)), ms(percentile(emitted, 50)), ms(percentile(emitted, 95)))
	})
}

// BenchmarkServerTail: one job printing -server.rate lines a second for
// -server.seconds, followed by -server.followers SSE followers of GET
// /jobs/{id}/tail_console_logs/ opened once it runs (and, for reference,
// by one): each line's latency from its emission (the time printed in it)
// to its receipt by a follower, for the lines printed after the follower
// connected; the rate the job managed to print at (a console log read too
// slowly holds its writes up); and the memory and CPU of this process (the
// server, and the followers, which are in it too): Go heap in use and RSS
// idle, at the peak, and after the load (connections closed, collected,
// returned to the OS), with the goroutines before and after, so memory a
// load leaves behind shows.
func BenchmarkServerTail(b *testing.B) {
	rel := benchRelease(b)
	n := int(float64(*benchRate) * *benchSeconds)
	params := fmt.Sprintf(`{"n":%d,"rate":%d}`, n, *benchRate)
	b.Run("direct", func(b *testing.B) {
		defer startLoad().report(b)
		h := &hist{}
		for i := 0; i < b.N; i++ {
			var got int
			var first, last time.Time
			rel.directLines(b, "lines", params, func(line []byte, at time.Time) {
				if t, ok := stamp(line); ok {
					h.add(at.Sub(t))
					if got++; got == 1 {
						first = t
					}
					last = t
				}
			})
			if got != n {
				b.Fatalf("read %d lines, want %d", got, n)
			}
			b.ReportMetric(float64(n-1)/last.Sub(first).Seconds(), "emitted-lines/s")
		}
		b.ReportMetric(msf(h.quantile(0.50)), "p50-ms")
		b.ReportMetric(msf(h.quantile(0.99)), "p99-ms")
		b.ReportMetric(msf(h.max), "max-ms")
		setBaseline("tail/p50", h.quantile(0.50))
		setBaseline("tail/p99", h.quantile(0.99))
		b.Logf("plugin binary run directly, %d lines at %d/s read from its stdout pipe: latency p50 %s p99 %s max %s", h.count, *benchRate, ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.max))
	})
	benchStores(b, func(b *testing.B, config func(*testing.B) Config) {
		for _, k := range []int{1, *benchFollowers} {
			b.Run(fmt.Sprintf("followers=%d", k), func(b *testing.B) {
				s := startBenchServer(b, config(b))
				s.publish(b, rel.zip)
				s.wait(b, s.run(b, "hello", "{}").ID, time.Minute)
				for i := 0; i < b.N; i++ {
					s.measureTail(b, n, params, k)
				}
			})
			if k == *benchFollowers {
				break
			}
		}
	})
}

// BenchmarkServerQueue: -server.jobs trivial jobs queued behind
// -server.max-jobs jobs that hold every slot, then drained: from the
// moment the slots free to the last job's end.
func BenchmarkServerQueue(b *testing.B) {
	rel := benchRelease(b)
	b.Run("direct", func(b *testing.B) {
		defer startLoad().report(b)
		var total time.Duration
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			var wg sync.WaitGroup
			next := make(chan int)
			errs := make(chan error, *benchMaxJobs)
			for w := 0; w < *benchMaxJobs; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range next {
						if _, err := rel.direct("hello", "{}"); err != nil {
							errs <- err
							for range next {
							}
							return
						}
					}
				}()
			}
			for j := 0; j < *benchJobs; j++ {
				next <- j
			}
			close(next)
			wg.Wait()
			total += time.Since(t0)
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		per := total / time.Duration(b.N)
		b.ReportMetric(per.Seconds(), "drain-s")
		b.ReportMetric(float64(*benchJobs)/per.Seconds(), "jobs/s")
		setBaseline("queue/drain", per)
		b.Logf("%d runs of the plugin binary, %d at once, no server: %s, %.1f jobs/s", *benchJobs, *benchMaxJobs, ms(per), float64(*benchJobs)/per.Seconds())
	})
	benchStores(b, func(b *testing.B, config func(*testing.B) Config) {
		defer startLoad().report(b)
		cfg := config(b)
		cfg.MaxJobs = *benchMaxJobs
		s := startBenchServer(b, cfg)
		s.publish(b, rel.zip)
		s.wait(b, s.run(b, "hello", "{}").ID, time.Minute)
		for i := 0; i < b.N; i++ {
			s.measureQueue(b)
		}
	})
}

// TestBenchPlugin checks that the benchmarks' plugin builds and prints
// its stamped lines at the rate asked (not a benchmark: a few lines).
func TestBenchPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary; skipped with -short")
	}
	rel := benchRelease(t)
	var seqs []int
	t0 := time.Now()
	rel.directLines(t, "lines", `{"n":20,"rate":200}`, func(line []byte, at time.Time) {
		if ts, ok := stamp(line); ok {
			if ts.Before(t0) || ts.After(at) {
				t.Errorf("line %q: time %v outside [%v, %v]", line, ts, t0, at)
			}
			m := regexp.MustCompile(`seq=(\d+)`).FindSubmatch(line)
			if m == nil {
				t.Fatalf("no seq in %q", line)
			}
			n, _ := strconv.Atoi(string(m[1]))
			seqs = append(seqs, n)
		}
	})
	if len(seqs) != 20 || seqs[19] != 19 {
		t.Errorf("lines %v, want 0…19", seqs)
	}
	if d := time.Since(t0); d < 95*time.Millisecond {
		t.Errorf("20 lines at 200/s took %v, want ≥ 95ms", d)
	}
}

// ---- measurements on a server

type runMeasure struct {
	post, running, firstLine, sseFirst, emitted time.Duration
}

// measureRun runs hello once and measures from the POST's start: the
// answer, the job seen RUNNING, its first console line seen by GET
// console_logs (both polled every millisecond), its first line received
// by a follower of tail_console_logs opened after the answer, and the
// time the action printed its line.
func (s *benchServer) measureRun(b *testing.B) runMeasure {
	t0 := time.Now()
	job := s.run(b, "hello", "{}")
	m := runMeasure{post: time.Since(t0), running: -1, firstLine: -1}
	if job.Status != "PENDING" {
		m.running = m.post
	}
	sse := make(chan time.Duration, 1)
	go func() {
		first := time.Duration(-1)
		_, err := s.follow(context.Background(), job.ID, nil, func(_ []byte, at time.Time) {
			if first < 0 {
				first = at.Sub(t0)
			}
		})
		if err != nil {
			b.Errorf("follow %s: %v", job.ID, err)
		}
		sse <- first
	}()
	deadline := time.Now().Add(time.Minute)
	for m.running < 0 || m.firstLine < 0 {
		if m.running < 0 {
			if j := s.job(b, job.ID); j.Status != "PENDING" {
				m.running = time.Since(t0)
			}
		}
		if m.firstLine < 0 {
			if lines := s.console(b, job.ID); len(lines) > 0 {
				m.firstLine = time.Since(t0)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("job %s: no RUNNING or no console line within a minute: %+v", job.ID, s.job(b, job.ID))
		}
		time.Sleep(time.Millisecond)
	}
	if j := s.wait(b, job.ID, time.Minute); j.Status != "SUCCEEDED" {
		b.Fatalf("job %s ended %s: %s", job.ID, j.Status, j.Result)
	}
	m.sseFirst = <-sse
	if m.sseFirst < 0 {
		b.Fatalf("job %s: the follower got no line", job.ID)
	}
	// The agent may write the last lines after the binary reported the end.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		for _, l := range s.console(b, job.ID) {
			if t, ok := stamp([]byte(l)); ok {
				m.emitted = t.Sub(t0)
				return m
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("job %s: the console log has no hello line: %q", job.ID, s.console(b, job.ID))
		}
	}
}

// follower is one SSE follower's record.
type follower struct {
	h                   hist
	lines               int
	connected, complete time.Time
	status              string
	err                 error
}

func (s *benchServer) measureTail(b *testing.B, n int, params string, followers int) {
	baseHeap, baseRSS, baseG := s.settle(0)
	mem := sampleMemory(100 * time.Millisecond)
	load := startLoad()
	t0 := time.Now()
	job := s.run(b, "lines", params)
	fs := make([]*follower, followers)
	var wg sync.WaitGroup
	var last struct {
		sync.Mutex
		t time.Time
	}
	for i := range fs {
		f := &follower{}
		fs[i] = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*benchSeconds*float64(time.Second))+10*time.Minute)
			defer cancel()
			f.status, f.err = s.follow(ctx, job.ID, func(at time.Time) { f.connected = at }, func(line []byte, at time.Time) {
				t, ok := stamp(line)
				if !ok {
					return
				}
				f.lines++
				if !t.Before(f.connected) {
					f.h.add(at.Sub(t))
				}
				if f.lines == n {
					last.Lock()
					if t.After(last.t) {
						last.t = t
					}
					last.Unlock()
				}
			})
			f.complete = time.Now()
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	own, busy := load.report(b)
	peakHeap, peakRSS := mem.stop()
	followed := time.Now()
	j := s.wait(b, job.ID, time.Minute)
	all := &hist{}
	minLines, maxLines := n, 0
	var lags []time.Duration
	for _, f := range fs {
		if f.err != nil {
			b.Errorf("follower: %v", f.err)
			continue
		}
		all.merge(&f.h)
		minLines, maxLines = min(minLines, f.lines), max(maxLines, f.lines)
		if !last.t.IsZero() {
			lags = append(lags, f.complete.Sub(last.t))
		}
	}
	var res struct {
		ElapsedMS int `json:"elapsed_ms"`
	}
	_ = json.Unmarshal(j.Result, &res)
	rate := float64(n) / (float64(max(res.ElapsedMS, 1)) / 1000)
	if j.Status != "SUCCEEDED" {
		b.Errorf("job %s: %s", j.Status, j.Result)
	}
	b.ReportMetric(float64(n-minLines), "missed-lines")
	if minLines != n {
		// Did the followers end early, or were the lines lost? The store
		// has the whole log once the agent has written it.
		stored, at := 0, time.Duration(-1)
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
			stored = 0
			for _, l := range s.console(b, job.ID) {
				if _, ok := stamp([]byte(l)); ok {
					stored++
				}
			}
			if stored == n {
				at = time.Since(followed)
				break
			}
		}
		b.Logf("MISSED LINES: the followers got the complete frame with %d to %d lines of %d; the console log in the store has %d lines (all of them %s after the followers ended)",
			minLines, maxLines, n, stored, map[bool]string{true: ms(at), false: "not within 2 minutes"}[at >= 0])
	}
	// After the load, measured as before it: a server that keeps what the
	// load made (a per-job buffer, a goroutine per follower) shows as
	// growth over the idle numbers.
	fs = nil
	afterHeap, afterRSS, afterG := s.settle(baseG)
	b.ReportMetric(msf(all.quantile(0.50)), "p50-ms")
	b.ReportMetric(msf(all.quantile(0.99)), "p99-ms")
	b.ReportMetric(msf(all.max), "max-ms")
	b.ReportMetric(msf(percentile(lags, 50)), "end-lag-p50-ms")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(afterHeap)/(1<<20), "after-heap-MiB")
	b.ReportMetric((float64(afterHeap)-float64(baseHeap))/(1<<20), "heap-growth-MiB")
	b.ReportMetric(float64(afterRSS)/(1<<20), "after-RSS-MiB")
	b.ReportMetric(float64(afterG-baseG), "goroutine-growth")
	b.ReportMetric(rate, "emitted-lines/s")
	ratio(b, "p50/direct", all.quantile(0.50), "tail/p50")
	ratio(b, "p99/direct", all.quantile(0.99), "tail/p99")
	b.Logf("%s: one job printing %d lines at %d/s (it took %d ms: %.0f lines/s), %d followers (each got %d–%d lines): latency of %d line receipts p50 %s p99 %s max %s; last line emitted → follower's complete frame p50 %s max %s; heap in use %.1f MiB idle → peak %.1f MiB → %.1f MiB after the load, RSS %.1f → peak %.1f → %.1f MiB after, goroutines %d before → %d after (after the load: connections closed, collected); this process and its plugin processes used %.2f cores, the machine %.2f, over %s",
		s.store, n, *benchRate, res.ElapsedMS, rate, followers, minLines, maxLines, all.count, ms(all.quantile(0.5)), ms(all.quantile(0.99)), ms(all.max),
		ms(percentile(lags, 50)), ms(slices.Max(append(lags, 0))), float64(baseHeap)/(1<<20), float64(peakHeap)/(1<<20), float64(afterHeap)/(1<<20),
		float64(baseRSS)/(1<<20), float64(peakRSS)/(1<<20), float64(afterRSS)/(1<<20), baseG, afterG, own, busy, ms(elapsed))
}

func (s *benchServer) measureQueue(b *testing.B) {
	gate := filepath.Join(b.TempDir(), "gate")
	params, _ := json.Marshal(map[string]any{"path": gate})
	var blockers []string
	for i := 0; i < *benchMaxJobs; i++ {
		j := s.run(b, "wait", string(params))
		if j.Status != "RUNNING" {
			b.Fatalf("blocker %d is %s, want RUNNING (the server runs %d jobs at once)", i, j.Status, *benchMaxJobs)
		}
		blockers = append(blockers, j.ID)
	}
	enqueue := make([]time.Duration, *benchJobs)
	ids := make([]string, *benchJobs)
	t0 := time.Now()
	for i := range ids {
		t := time.Now()
		j := s.run(b, "hello", "{}")
		enqueue[i] = time.Since(t)
		if j.Status != "PENDING" {
			b.Fatalf("job %d is %s, want PENDING", i, j.Status)
		}
		ids[i] = j.ID
	}
	submit := time.Since(t0)
	open := time.Now()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	s.wait(b, ids[len(ids)-1], 2*time.Hour)
	for _, id := range append(blockers, ids...) {
		s.wait(b, id, time.Hour)
	}
	seen := time.Since(open)
	// The drain ends at the last job's completion as the server recorded it.
	done := map[string]benchJob{}
	for cursor := ""; ; {
		var page struct {
			Results []benchJob `json:"results"`
			Next    *string    `json:"next"`
		}
		path := "/jobs/?page_size=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		s.get(b, path, &page)
		for _, j := range page.Results {
			done[j.ID] = j
		}
		if page.Next == nil {
			break
		}
		u, _ := url.Parse(*page.Next)
		cursor = u.Query().Get("cursor")
	}
	var end time.Time
	statuses := map[string]int{}
	for _, id := range ids {
		j := done[id]
		statuses[j.Status]++
		if c, err := time.Parse(time.RFC3339Nano, j.Completed); err == nil && c.After(end) {
			end = c
		}
	}
	if statuses["SUCCEEDED"] != len(ids) {
		b.Errorf("statuses %v, want all %d SUCCEEDED", statuses, len(ids))
	}
	drain := end.Sub(open)
	if end.IsZero() {
		drain = seen
	}
	tenth := max(len(enqueue)/10, 1)
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(float64(len(ids))/drain.Seconds(), "jobs/s")
	b.ReportMetric(submit.Seconds(), "submit-s")
	b.ReportMetric(msf(percentile(enqueue, 50)), "post-p50-ms")
	b.ReportMetric(msf(mean(enqueue[:tenth])), "post-first10%-ms")
	b.ReportMetric(msf(mean(enqueue[len(enqueue)-tenth:])), "post-last10%-ms")
	ratio(b, "drain/direct", drain, "queue/drain")
	b.Logf("%s: %d jobs queued behind %d held slots in %s (POST p50 %s p95 %s; mean of the first 10%% %s, of the last 10%% %s); drained in %s (%.1f jobs/s; the poller saw the end after %s); %v",
		s.store, len(ids), *benchMaxJobs, ms(submit), ms(percentile(enqueue, 50)), ms(percentile(enqueue, 95)), ms(mean(enqueue[:tenth])), ms(mean(enqueue[len(enqueue)-tenth:])),
		ms(drain), float64(len(ids))/drain.Seconds(), ms(seen), statuses)
}

// ---- the server, over HTTP

type benchServer struct {
	url, token, store string
	client            *http.Client
}

// benchStores runs fn as the sub-benchmarks sqlite and postgres, giving
// it the Config of a new, empty server on that store.
func benchStores(b *testing.B, fn func(b *testing.B, config func(*testing.B) Config)) {
	b.Run("sqlite", func(b *testing.B) {
		fn(b, func(b *testing.B) Config { return Config{DataDir: b.TempDir()} })
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := os.Getenv("SYNAPSE_TEST_POSTGRES_DSN")
		if dsn == "" {
			// Printed as well: a skip says nothing without -v.
			fmt.Printf("%s: PostgreSQL NOT MEASURED: SYNAPSE_TEST_POSTGRES_DSN is not set\n", b.Name())
			b.Skip("PostgreSQL NOT MEASURED: SYNAPSE_TEST_POSTGRES_DSN is not set (scripts/bench-server.sh starts one; or DSN=$(./scripts/postgres.sh start | tail -1))")
		}
		fn(b, func(b *testing.B) Config { return Config{DataDir: b.TempDir(), DB: benchSchema(b, dsn)} })
	})
}

// benchSchema is dsn with a new schema as its search_path, dropped at the
// end.
func benchSchema(b *testing.B, dsn string) string {
	schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		b.Fatalf("PostgreSQL at SYNAPSE_TEST_POSTGRES_DSN: %v", err)
	}
	b.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// startBenchServer runs Serve on a free port until the benchmark ends and
// reads its address and admin token from what it prints.
func startBenchServer(b *testing.B, cfg Config) *benchServer {
	cfg.Addr = "127.0.0.1:0"
	thawOnCleanup(b, filepath.Join(cfg.DataDir, "work"))
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, cfg, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var printed strings.Builder
	re := regexp.MustCompile(`listening on (http://\S+) \(store: (\w+)`)
	s := &benchServer{}
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			s.url, s.store = m[1], m[2]
			break
		}
	}
	if s.url == "" {
		cancel()
		b.Fatalf("the server did not start: %s %v", printed.String(), <-errc)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	s.token = regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed.String())
	if s.token == "" {
		cancel()
		b.Fatalf("no admin token in what the server printed:\n%s", printed.String())
	}
	s.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			b.Errorf("server shutdown: %v", err)
		}
		s.client.CloseIdleConnections()
	})
	return s
}

type benchJob struct {
	ID        string          `json:"id"`
	Status    string          `json:"status"`
	Result    json.RawMessage `json:"result"`
	Completed string          `json:"completed"`
}

func (s *benchServer) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Synapse-Access-Token", "Token "+s.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return s.client.Do(req)
}

// call sends a request and decodes the answer into v; an answer that is
// not 2xx fails the benchmark.
func (s *benchServer) call(b testing.TB, method, path, contentType string, body io.Reader, v any) {
	resp, err := s.do(context.Background(), method, path, contentType, body)
	if err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode/100 != 2 {
		b.Fatalf("%s %s: %d %s %v", method, path, resp.StatusCode, data, err)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			b.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

func (s *benchServer) get(b testing.TB, path string, v any) { s.call(b, "GET", path, "", nil, v) }

func (s *benchServer) publish(b testing.TB, zip []byte) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range map[string]string{"plugin": "benchplugin", "version": "1.0", "config": benchConfig, "debug": "False"} {
		_ = mw.WriteField(k, v)
	}
	w, _ := mw.CreateFormFile("file", "plugin.zip")
	_, _ = w.Write(zip)
	_ = mw.Close()
	s.call(b, "POST", "/plugin_releases/", mw.FormDataContentType(), &body, nil)
}

func (s *benchServer) run(b testing.TB, action, params string) benchJob {
	var j benchJob
	s.call(b, "POST", "/plugins/benchplugin/run/", "application/json", strings.NewReader(`{"agent":1,"action":"`+action+`","params":`+params+`}`), &j)
	return j
}

func (s *benchServer) job(b testing.TB, id string) benchJob {
	var j benchJob
	s.get(b, "/jobs/"+id+"/", &j)
	return j
}

func (s *benchServer) console(b testing.TB, id string) []string {
	var lines []string
	s.get(b, "/jobs/"+id+"/console_logs/", &lines)
	return lines
}

// wait polls the job until it has ended.
func (s *benchServer) wait(b testing.TB, id string, limit time.Duration) benchJob {
	deadline := time.Now().Add(limit)
	for {
		j := s.job(b, id)
		switch j.Status {
		case "SUCCEEDED", "FAILED", "STOPPED":
			return j
		}
		if time.Now().After(deadline) {
			b.Fatalf("job %s did not end within %s: %s", id, limit, j.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// follow reads GET /jobs/{id}/tail_console_logs/ until its complete frame
// (whose status it returns), calling connected when the connected frame
// arrives and line with each log frame's data line and the time it was
// read: the time the read from the connection that brought the line's end
// returned (one clock reading per read, not per line, so the follower's
// own work on the lines before it in the same read is not counted as the
// server's latency, and costs the shared CPU less).
func (s *benchServer) follow(ctx context.Context, id string, connected func(time.Time), line func([]byte, time.Time)) (string, error) {
	resp, err := s.do(ctx, "GET", "/jobs/"+id+"/tail_console_logs/", "", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("tail: %d %s", resp.StatusCode, data)
	}
	logPrefix := []byte(`data: {"data":`) // encoding/json sorts map keys: a log frame
	buf := make([]byte, 256<<10)
	start, end := 0, 0 // buf[start:end] is read and not yet cut into lines
	for {
		if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if end == len(buf) {
			return "", fmt.Errorf("tail: a line longer than %d bytes", len(buf))
		}
		n, err := resp.Body.Read(buf[end:])
		at := time.Now()
		end += n
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			l := buf[start : start+i+1]
			start += i + 1
			if !bytes.HasPrefix(l, []byte("data: ")) {
				continue
			}
			if bytes.HasPrefix(l, logPrefix) {
				line(l, at)
				continue
			}
			var f struct{ Type, Status string }
			if err := json.Unmarshal(l[len("data: "):], &f); err != nil {
				return "", fmt.Errorf("tail: %v in %q", err, l)
			}
			switch f.Type {
			case "connected":
				if connected != nil {
					connected(at)
				}
			case "log":
				line(l, at)
			case "complete":
				return f.Status, nil
			}
		}
		if err != nil {
			return "", fmt.Errorf("tail: the stream ended before its complete frame: %w", err)
		}
	}
}

// ---- the plugin, and running its binary directly

type benchRel struct {
	zip []byte
	bin string
}

var (
	benchRelOnce sync.Once
	benchRelVal  benchRel
	benchRelErr  error
)

// benchRelease builds testdata/benchplugin (a static binary, cached) and
// packs it as a release zip, once.
func benchRelease(tb testing.TB) benchRel {
	tb.Helper()
	benchRelOnce.Do(func() {
		dir, err := filepath.Abs(filepath.Join("testdata", "benchplugin"))
		if err != nil {
			benchRelErr = err
			return
		}
		built, err := build.Build(context.Background(), build.Options{Dir: dir, CacheDir: filepath.Join(os.TempDir(), "synapse-server-bench-cache"), Static: true})
		if err != nil {
			benchRelErr = err
			return
		}
		pkg, err := pack.Build(pack.Options{Dir: dir, Binary: built.Binary, BinaryName: worker.BinaryName})
		if err != nil {
			benchRelErr = err
			return
		}
		benchRelVal = benchRel{zip: pkg.Data, bin: built.Binary}
	})
	if benchRelErr != nil {
		tb.Fatal(benchRelErr)
	}
	return benchRelVal
}

type directRun struct{ start, firstLine, exit time.Duration }

// direct runs the binary's `job` command for action as an agent would,
// without a server to report to, and times it: started, first line of
// output read, exited.
func (r benchRel) direct(action, params string) (directRun, error) {
	d := directRun{firstLine: -1}
	t0 := time.Now()
	err := r.run(action, params, func() { d.start = time.Since(t0) }, func(_ []byte, at time.Time) {
		if d.firstLine < 0 {
			d.firstLine = at.Sub(t0)
		}
	})
	d.exit = time.Since(t0)
	return d, err
}

func (r benchRel) mustDirect(tb testing.TB, action, params string) directRun {
	d, err := r.direct(action, params)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// directLines runs the binary's `job` command for action and calls line
// with each line of its output and the time it was read.
func (r benchRel) directLines(tb testing.TB, action, params string, line func([]byte, time.Time)) {
	if err := r.run(action, params, func() {}, line); err != nil {
		tb.Fatal(err)
	}
}

func (r benchRel) run(action, params string, started func(), line func([]byte, time.Time)) error {
	cmd := exec.Command(r.bin, "job")
	cmd.Dir = filepath.Dir(r.bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		worker.EnvJobID + "=direct", worker.EnvActionEntrypoint + "=" + action, worker.EnvActionParams + "=" + params}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	started()
	rd := bufio.NewReaderSize(out, 64<<10)
	for {
		l, err := rd.ReadSlice('\n')
		if len(l) > 0 {
			line(l, time.Now())
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s job (%s): %w", r.bin, action, err)
	}
	return nil
}

// stamp finds the emission time " t=UNIXNANO" a benchplugin line carries.
func stamp(line []byte) (time.Time, bool) {
	i := bytes.Index(line, []byte(" t="))
	if i < 0 {
		return time.Time{}, false
	}
	var n int64
	j := i + 3
	for ; j < len(line) && line[j] >= '0' && line[j] <= '9'; j++ {
		n = n*10 + int64(line[j]-'0')
	}
	if j == i+3 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// ---- statistics and reporting

// percentile is the nearest-rank p-th percentile of ds (0 when empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func reportPercentiles(b *testing.B, name string, ds []time.Duration, ps ...float64) {
	for _, p := range ps {
		b.ReportMetric(msf(percentile(ds, p)), fmt.Sprintf("%s-p%g-ms", name, p))
	}
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string { return strconv.FormatFloat(msf(d), 'f', 1, 64) + " ms" }

// The baselines measured by the "direct" sub-benchmarks of this run.
var (
	baselineMu sync.Mutex
	baselines  = map[string]time.Duration{}
)

func setBaseline(name string, d time.Duration) {
	baselineMu.Lock()
	baselines[name] = d
	baselineMu.Unlock()
}

// ratio reports d against the baseline name as "x-NAME", when the baseline
// was measured in this run.
func ratio(b *testing.B, unit string, d time.Duration, name string) {
	baselineMu.Lock()
	base, ok := baselines[name]
	baselineMu.Unlock()
	if ok && base > 0 {
		b.ReportMetric(float64(d)/float64(base), "x-"+unit)
	}
}

// hist is a latency histogram of buckets 1% wide from 1 µs up.
type hist struct {
	n     []uint64
	count uint64
	max   time.Duration
}

var histStep = math.Log(1.01)

func (h *hist) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = int(math.Log(us) / histStep)
	}
	if i >= len(h.n) {
		h.n = append(h.n, make([]uint64, i+1-len(h.n))...)
	}
	h.n[i]++
	h.count++
	h.max = max(h.max, d)
}

func (h *hist) merge(o *hist) {
	if len(o.n) > len(h.n) {
		h.n = append(h.n, make([]uint64, len(o.n)-len(h.n))...)
	}
	for i, c := range o.n {
		h.n[i] += c
	}
	h.count += o.count
	h.max = max(h.max, o.max)
}

// quantile is the upper edge of the bucket holding the q-quantile (at
// most the maximum seen).
func (h *hist) quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	var seen uint64
	for i, c := range h.n {
		if seen += c; seen >= max(rank, 1) {
			return min(time.Duration(math.Exp(float64(i+1)*histStep)*float64(time.Microsecond)), h.max)
		}
	}
	return h.max
}

// ---- memory and CPU of this process

// settle closes the client's idle connections, waits up to 10 s for this
// process's goroutines to fall to want (0: to stay the same for 500 ms),
// collects everything and returns what it can to the OS, and then reads
// the Go heap in use, the RSS and the goroutines: the idle state that a
// measurement before a load and one after it compare.
func (s *benchServer) settle(want int) (heap, rssBytes uint64, goroutines int) {
	s.client.CloseIdleConnections()
	n, stable := runtime.NumGoroutine(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if want > 0 && n <= want || want == 0 && time.Since(stable) >= 500*time.Millisecond {
			break
		}
		time.Sleep(50 * time.Millisecond)
		if m := runtime.NumGoroutine(); m != n {
			n, stable = m, time.Now()
		}
	}
	runtime.GC() // a sync.Pool's objects survive one collection
	debug.FreeOSMemory()
	return heapInuse(), rss(), runtime.NumGoroutine()
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rss is this process's resident set size (VmRSS), 0 where /proc is not.
func rss() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

type memSampler struct {
	done            chan struct{}
	stopped         sync.WaitGroup
	peakHeap, peakR uint64
}

// sampleMemory records the peak heap in use and RSS every interval until
// stop.
func sampleMemory(every time.Duration) *memSampler {
	m := &memSampler{done: make(chan struct{})}
	m.stopped.Add(1)
	go func() {
		defer m.stopped.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.peakHeap, m.peakR = max(m.peakHeap, heapInuse()), max(m.peakR, rss())
			select {
			case <-m.done:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) stop() (heap, rss uint64) {
	close(m.done)
	m.stopped.Wait()
	return m.peakHeap, m.peakR
}

// loadMeter measures the CPU used while a benchmark runs: by this process
// and its plugin processes (which it waits for), and by the whole machine
// (/proc/stat), so a run disturbed by other work shows it.
type loadMeter struct {
	t       time.Time
	own     time.Duration
	busy    float64 // clock ticks
	loadavg string
}

func startLoad() loadMeter {
	return loadMeter{t: time.Now(), own: ownCPU(), busy: machineBusy(), loadavg: loadAvg()}
}

// report reports own-cores and busy-cores (the machine) since the start
// and logs the load averages; it returns both.
func (l loadMeter) report(b *testing.B) (own, busy float64) {
	secs := time.Since(l.t).Seconds()
	own = (ownCPU() - l.own).Seconds() / secs
	busy = (machineBusy() - l.busy) / 100 / secs // USER_HZ is 100 on Linux
	b.ReportMetric(own, "own-cores")
	if l.busy > 0 {
		b.ReportMetric(busy, "busy-cores")
	}
	b.Logf("CPU: this process and its plugin processes %.2f cores, the whole machine %.2f of %d; load average %s at the start, %s at the end", own, busy, runtime.NumCPU(), l.loadavg, loadAvg())
	return own, busy
}

// ownCPU is the user and system time of this process and of its children
// that have ended.
func ownCPU() time.Duration {
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return 0
	}
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
}

// machineBusy is the machine's busy CPU time in clock ticks (user, nice,
// system, irq, softirq, steal of /proc/stat), 0 where there is none.
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseFloat(f[i], 64)
		busy += v
	}
	return busy
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
