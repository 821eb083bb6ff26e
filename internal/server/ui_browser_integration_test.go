//go:build integration

package server

// The dashboard in a real browser: Debian's chromium, headless, driven
// with chromedp, against the real server (Serve, in-process, SQLite)
// running a real plugin (testdata/uiplugin) on its process agent.
// Screenshots go to $SYNAPSE_TEST_ARTIFACTS, else a temporary directory
// the test names in its log.
//
//	go test -tags integration -run TestDashboardBrowser ./internal/server/

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

const uiTestConfig = `{"code":"uitest","name":"Dashboard Test","actions":{"train":{"description":"Trains for a number of epochs"},"wait":{},"xss":{},"lines":{},"fail":{}}}`

// chromium finds the browser: $SYNAPSE_TEST_CHROMIUM, else chromium on
// PATH. Missing, the test fails under CI=true and is skipped (saying so)
// elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SYNAPSE_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH (apt-get install -y chromium, or set SYNAPSE_TEST_CHROMIUM): the dashboard's browser test cannot run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// uiPluginZip builds testdata/uiplugin into a release zip.
func uiPluginZip(t *testing.T) []byte {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "uiplugin"))
	if err != nil {
		t.Fatal(err)
	}
	built, err := build.Build(t.Context(), build.Options{Dir: dir, CacheDir: filepath.Join(os.TempDir(), "synapse-server-ui-cache"), Static: true})
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := pack.Build(pack.Options{Dir: dir, Binary: built.Binary, BinaryName: worker.BinaryName})
	if err != nil {
		t.Fatal(err)
	}
	return pkg.Data
}

// artifacts is where the screenshots go.
func artifacts(t *testing.T) string {
	dir := os.Getenv("SYNAPSE_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser is a headless chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // root in CI containers
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// run runs actions in the tab, failing the test on an error.
func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates expr in the page into out (a pointer; nil ignores it).
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("evaluate %s: %v (%s)", expr, err, raw)
		}
	}
}

// js is an action that evaluates expr and ignores its value.
func js(expr string) chromedp.Action[chromedp.Void] { return chromedp.Evaluate[chromedp.Void](expr) }

// waitFor evaluates expr (JavaScript returning an object with ok) until
// ok is true, and returns the last value; fails with what it saw after
// timeout.
func (b *browser) waitFor(what, expr string, timeout time.Duration) map[string]any {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var v map[string]any
	for {
		v = nil
		b.eval(expr, &v)
		if ok, _ := v["ok"].(bool); ok {
			return v
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not within %s; last seen %v", what, timeout, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browser) screenshot(path string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// pageState is what the job page shows, for waitFor ({loading: true}
// while a page loads).
const pageState = `(() => {
  const q = s => document.querySelector(s);
  if (!q('#job') || !q('#console')) return {loading: true};
  const loss = q('figure[data-series="train/loss"]');
  return {
    status: q('#status') && q('#status').textContent,
    overall: q('#overall') && Number(q('#overall').getAttribute('aria-valuenow')),
    points: loss ? Number(loss.dataset.points) : 0,
    lines: Number(q('#console').dataset.lines || 0),
    done: q('#job').dataset.done === '1',
  };
})()`

func TestDashboardBrowser(t *testing.T) {
	b := newBrowser(t)
	out := artifacts(t)
	zip := uiPluginZip(t)
	base, printed, stop := serve(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), MaxJobs: 4})
	t.Cleanup(func() { _ = stop() })
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	if status, body := publishTo(t, base, token, map[string]string{"plugin": "uitest", "version": "1.0", "config": uiTestConfig}, zip); status != 201 {
		t.Fatalf("publish = %d %s", status, body)
	}
	api := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Token "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if resp.StatusCode >= 300 || json.Unmarshal(raw, &v) != nil {
			t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, raw)
		}
		return v
	}
	runJob := func(action, params string) string {
		t.Helper()
		return api("POST", "/plugins/uitest/run/", fmt.Sprintf(`{"action":%q,"params":%s}`, action, params))["id"].(string)
	}

	// Signed out, the dashboard goes to the sign-in page, and back after.
	b.run(chromedp.Navigate(base+"/ui/agents/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.run(chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("section.agent")))
	var loc string
	b.eval(`location.pathname`, &loc)
	if loc != "/ui/agents/" {
		t.Fatalf("after signing in: %s, want /ui/agents/", loc)
	}

	var trainID string // the job of the first subtest
	t.Run("job runs: progress, metric chart and console grow live", func(t *testing.T) {
		b.t = t
		id := runJob("train", `{"epochs":12,"delay_ms":500}`)
		trainID = id
		b.run(chromedp.Navigate(base+"/ui/jobs/"+id+"/"), chromedp.WaitVisible(chromedp.CSS("#overall")))
		// While RUNNING the chart has points, then more points, and the
		// console more lines.
		first := b.waitFor("a first metric point while running", `(() => { const s = `+pageState+`; s.ok = s.status === 'RUNNING' && s.points >= 1 && s.lines >= 1; return s; })()`, time.Minute)
		p0, l0 := first["points"].(float64), first["lines"].(float64)
		more := fmt.Sprintf(`(() => { const s = %s; s.ok = s.status === 'RUNNING' && s.points > %v && s.lines > %v; return s; })()`, pageState, p0, l0)
		second := b.waitFor("more points and console lines while running", more, time.Minute)
		b.screenshot(filepath.Join(out, "job-running.png"))
		if second["overall"].(float64) >= 100 {
			t.Errorf("overall bar at 100%% while running: %v", second)
		}
		done := b.waitFor("the job's end", `(() => { const s = `+pageState+`; s.ok = s.done; return s; })()`, 2*time.Minute)
		if done["status"] != "SUCCEEDED" || done["overall"].(float64) != 100 || done["points"].(float64) != 12 {
			t.Fatalf("at the end: %v, want SUCCEEDED, overall 100, 12 points", done)
		}
		var page struct {
			Steps     []string `json:"steps"`
			Snapshot  string   `json:"snapshot"`
			Images    int      `json:"images"`
			Trials    []string `json:"trials"`
			Result    string   `json:"result"`
			LogLevels []string `json:"levels"`
			Console   string   `json:"console"`
			Charts    []string `json:"charts"`
		}
		b.eval(`({
		  steps: [...document.querySelectorAll('#steps .bar')].map(e => e.dataset.step + '=' + e.getAttribute('aria-valuenow')),
		  snapshot: document.querySelector('#snapshots tbody').textContent,
		  images: [...document.querySelectorAll('#vis img')].filter(i => i.complete && i.naturalWidth === 32).length,
		  trials: [...document.querySelectorAll('#trials tbody tr')].map(r => r.cells[0].textContent),
		  result: document.querySelector('#result').textContent,
		  levels: [...document.querySelectorAll('#log-level option')].map(o => o.value),
		  console: document.querySelector('#console').textContent,
		  charts: [...document.querySelectorAll('#charts figure')].map(f => f.dataset.series + ':' + f.dataset.points),
		})`, &page)
		if strings.Join(page.Steps, " ") != "evaluate=100 train=100" {
			t.Errorf("step bars %v, want evaluate and train (by name) at 100", page.Steps)
		}
		if !strings.Contains(page.Snapshot, "loss") || !strings.Contains(page.Snapshot, "12") {
			t.Errorf("snapshot table %q, want epoch 12 and loss", page.Snapshot)
		}
		if page.Images != 1 {
			t.Errorf("%d visualizations shown, want 1 decoded 32×32 image", page.Images)
		}
		if strings.Join(page.Trials, ",") != "t1,t2 (best),t3" {
			t.Errorf("trials %v", page.Trials)
		}
		if !strings.Contains(page.Result, `"final_loss"`) {
			t.Errorf("result %q", page.Result)
		}
		if !strings.Contains(page.Console, "epoch 12/12: loss=") {
			t.Errorf("console lacks the last epoch's line:\n%s", page.Console)
		}
		if strings.Join(page.Charts, " ") != "train/accuracy:12 train/loss:12" && strings.Join(page.Charts, " ") != "train/loss:12 train/accuracy:12" {
			t.Errorf("charts %v, want train/loss and train/accuracy with 12 points each", page.Charts)
		}
		if !contains(page.LogLevels, "warning") || !contains(page.LogLevels, "info") {
			t.Errorf("log level filter %v, want info and warning", page.LogLevels)
		}
		// Trials sort by a column, both ways, from the keyboard too.
		var order []string
		b.run(chromedp.Click(chromedp.CSS(`#trials th:nth-child(3) button`)))
		b.eval(`[...document.querySelectorAll('#trials tbody tr')].map(r => r.cells[0].textContent)`, &order)
		if strings.Join(order, ",") != "t2 (best),t3,t1" {
			t.Errorf("trials sorted by loss: %v, want t2, t3, t1", order)
		}
		b.run(js(`document.querySelector('#trials th:nth-child(3) button').focus()`), chromedp.KeyEvent("\r"))
		b.eval(`[...document.querySelectorAll('#trials tbody tr')].map(r => r.cells[0].textContent + ' ' + r.closest('table').querySelector('th:nth-child(3)').getAttribute('aria-sort'))`, &order)
		if strings.Join(order, ",") != "t1 descending,t3 descending,t2 (best) descending" {
			t.Errorf("trials sorted by loss again (Enter): %v, want t1, t3, t2 descending", order)
		}
		// The level filter hides the other levels.
		var shown []string
		b.run(js(`(s => { s.value = 'warning'; s.dispatchEvent(new Event('change')); })(document.querySelector('#log-level'))`))
		b.eval(`[...document.querySelectorAll('#logs tbody tr')].filter(r => !r.hidden).map(r => r.dataset.level)`, &shown)
		if len(shown) != 1 || shown[0] != "warning" {
			t.Errorf("with the warning filter the log shows %v, want one warning", shown)
		}
		b.run(js(`(s => { s.value = ''; s.dispatchEvent(new Event('change')); })(document.querySelector('#log-level'))`))
		b.screenshot(filepath.Join(out, "job.png"))

		// The jobs list: newest first, this job at 100%.
		b.run(chromedp.Navigate(base + "/ui/jobs/"))
		row := b.waitFor("the job in the list", fmt.Sprintf(`(() => { const r = document.querySelector('#jobs tr[data-id=%q]'); return r ? {ok: true, status: r.dataset.status, pct: r.querySelector('.bar').getAttribute('aria-valuenow'), text: r.textContent} : {ok: false}; })()`, id), 30*time.Second)
		if row["status"] != "SUCCEEDED" || row["pct"] != "100" || !strings.Contains(row["text"].(string), "uitest@1.0") || !strings.Contains(row["text"].(string), "train") {
			t.Errorf("jobs list row %v", row)
		}
		b.screenshot(filepath.Join(out, "jobs.png"))
	})

	t.Run("jobs list updates itself and filters", func(t *testing.T) {
		b.t = t
		b.run(chromedp.Navigate(base+"/ui/jobs/"), chromedp.WaitVisible(chromedp.CSS("#jobs tbody tr[data-id]")))
		b.eval(`window.__marker = 'same page'`, nil)
		id := runJob("train", `{"epochs":2,"delay_ms":100}`)
		b.waitFor("a new job appears without a reload", fmt.Sprintf(`(() => ({ok: window.__marker === 'same page' && document.querySelector('#jobs tbody tr').dataset.id === %q}))()`, id), 30*time.Second)
		b.run(js(`(s => { s.value = 'SUCCEEDED'; s.dispatchEvent(new Event('change')); })(document.querySelector('#status'))`))
		b.waitFor("only SUCCEEDED jobs listed", `(() => { const s = [...document.querySelectorAll('#jobs tbody tr[data-id]')].map(r => r.dataset.status); return {ok: s.length > 0 && s.every(x => x === 'SUCCEEDED') && location.search === '?status=SUCCEEDED', s}; })()`, 30*time.Second)
	})

	t.Run("stop button stops a running job", func(t *testing.T) {
		b.t = t
		id := runJob("wait", `{}`)
		b.run(chromedp.Navigate(base + "/ui/jobs/" + id + "/"))
		b.waitFor("the job running with console lines", `(() => { const s = `+pageState+`; s.ok = s.status === 'RUNNING' && s.lines > 0; return s; })()`, time.Minute)
		// Cancel first: nothing happens.
		// From the keyboard: Enter on the button opens the dialog, Escape closes it.
		b.run(js(`document.querySelector('#stop').focus()`), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("#stop-dialog")),
			chromedp.KeyEvent("\x1b"), chromedp.WaitNotVisible(chromedp.CSS("#stop-dialog")))
		b.run(chromedp.Click(chromedp.CSS("#stop")), chromedp.WaitVisible(chromedp.CSS("#stop-dialog")), chromedp.Click(chromedp.CSS("#stop-cancel")),
			chromedp.WaitNotVisible(chromedp.CSS("#stop-dialog")))
		if j := api("GET", "/jobs/"+id+"/", ""); j["status"] != "RUNNING" {
			t.Fatalf("after cancelling the dialog the job is %v", j["status"])
		}
		b.run(chromedp.Click(chromedp.CSS("#stop")), chromedp.WaitVisible(chromedp.CSS("#stop-dialog")), chromedp.Click(chromedp.CSS("#stop-confirm")))
		b.waitFor("the page shows STOPPED", `(() => { const s = `+pageState+`; s.ok = s.status === 'STOPPED' && location.search === '?stop=ok' && document.querySelector('#stop-form').hidden; return s; })()`, time.Minute)
		if j := api("GET", "/jobs/"+id+"/", ""); j["status"] != "STOPPED" {
			t.Fatalf("after the stop button the job is %v", j["status"])
		}
	})

	t.Run("queue position of a waiting job, agents page", func(t *testing.T) {
		b.t = t
		var ids []string
		for range 5 { // MaxJobs 4: the fifth waits
			ids = append(ids, runJob("wait", `{}`))
		}
		t.Cleanup(func() {
			for _, id := range ids {
				req, _ := http.NewRequest("POST", base+"/v2/jobs/"+id+"/stop/", nil)
				req.Header.Set("Authorization", "Token "+token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		})
		b.run(chromedp.Navigate(base + "/ui/jobs/"))
		row := b.waitFor("the fifth job waiting, first in the queue", fmt.Sprintf(`(() => {
		  const r = document.querySelector('#jobs tr[data-id=%q]');
		  const running = document.querySelectorAll('#jobs tr[data-status=RUNNING]').length;
		  return r ? {ok: r.dataset.status === 'PENDING' && running === 4 && !!r.querySelector('.queue'), queue: r.querySelector('.queue') && r.querySelector('.queue').textContent, running} : {ok: false};
		})()`, ids[4]), time.Minute)
		if row["queue"] != "#1 in queue" {
			t.Errorf("queue position shown %v, want #1 in queue", row["queue"])
		}
		b.screenshot(filepath.Join(out, "jobs-queue.png"))
		b.run(chromedp.Navigate(base + "/ui/jobs/" + ids[4] + "/"))
		b.waitFor("the job page's queue position", `({ok: document.querySelector('#queue').textContent === "position 1 in the agent's queue"})`, 30*time.Second)
		b.run(chromedp.Navigate(base + "/ui/agents/"))
		var agent string
		b.eval(`document.querySelector('section.agent').textContent`, &agent)
		if !strings.Contains(agent, "4 running, 1 queued") || !strings.Contains(agent, ids[4][:12]) {
			t.Errorf("agents page: %q, want 4 running, 1 queued with the fifth job", agent)
		}
	})

	t.Run("HTML in logs, params and results never runs", func(t *testing.T) {
		b.t = t
		const xss = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`
		id := runJob("xss", fmt.Sprintf(`{}`))
		b.run(chromedp.Navigate(base + "/ui/jobs/" + id + "/"))
		b.waitFor("the job's end", `(() => { const s = `+pageState+`; s.ok = s.done; return s; })()`, time.Minute)
		var got struct {
			XSS     string `json:"xss"`
			Result  string `json:"result"`
			Console string `json:"console"`
			Logs    string `json:"logs"`
			Steps   string `json:"steps"`
			Snap    string `json:"snap"`
			Charts  string `json:"charts"`
			Images  int    `json:"images"`
			Scripts int    `json:"scripts"`
		}
		b.eval(`({
		  xss: typeof window.__xss,
		  result: document.querySelector('#result').textContent,
		  console: document.querySelector('#console').textContent,
		  logs: document.querySelector('#logs').textContent,
		  steps: document.querySelector('#steps').textContent,
		  snap: document.querySelector('#snapshots').textContent,
		  charts: document.querySelector('#charts').textContent,
		  images: document.querySelectorAll('main img').length,
		  scripts: document.querySelectorAll('main script:not([src])').length,
		})`, &got)
		if got.XSS != "undefined" || got.Images != 0 || got.Scripts != 0 {
			t.Fatalf("the job's HTML ran or became elements: __xss %s, %d images, %d inline scripts", got.XSS, got.Images, got.Scripts)
		}
		for name, text := range map[string]string{"result": got.Result, "console": got.Console, "log": got.Logs, "steps": got.Steps, "snapshot": got.Snap, "chart": got.Charts} {
			if !strings.Contains(text, "<script>window.__xss=1</script>") {
				t.Errorf("%s does not show the HTML as text: %q", name, text)
			}
		}
		_ = xss
	})

	t.Run("a failed job shows its error", func(t *testing.T) {
		b.t = t
		id := runJob("fail", `{}`)
		b.run(chromedp.Navigate(base + "/ui/jobs/" + id + "/"))
		b.waitFor("the job's end", `(() => { const s = `+pageState+`; s.ok = s.done; return s; })()`, time.Minute)
		var got struct {
			Status  string `json:"status"`
			Error   string `json:"error"`
			Visible bool   `json:"visible"`
			Bar     string `json:"bar"`
			XSS     string `json:"xss"`
		}
		b.eval(`({status: document.querySelector('#status').textContent, error: document.querySelector('#error').textContent,
		  visible: !document.querySelector('#error-section').hidden, bar: document.querySelector('#overall').className, xss: typeof window.__xss})`, &got)
		if got.Status != "FAILED" || !got.Visible || !strings.Contains(got.Error, "the data set is broken: <script>window.__xss=1</script>") || got.XSS != "undefined" {
			t.Errorf("failed job page: %+v", got)
		}
		if !strings.Contains(got.Bar, "failed") {
			t.Errorf("the overall bar of a failed job has classes %q, want failed", got.Bar)
		}
	})

	t.Run("10,000 console lines", func(t *testing.T) {
		b.t = t
		id := runJob("lines", `{"n":10000}`)
		start := time.Now()
		b.run(chromedp.Navigate(base + "/ui/jobs/" + id + "/"))
		b.waitFor("all 10,000 lines", `(() => { const s = `+pageState+`; s.ok = s.lines >= 10000 && s.done; return s; })()`, 2*time.Minute)
		t.Logf("10,000 lines on the page %s after the run", time.Since(start).Round(time.Millisecond))
		var shown struct {
			Total    int  `json:"total"`
			Rendered int  `json:"rendered"`
			Button   bool `json:"button"`
			First    bool `json:"first"`
			Last     bool `json:"last"`
		}
		const state = `(() => { const c = document.querySelector('#console'); const t = c.textContent.split('\n'); t.pop(); return {total: Number(c.dataset.lines), rendered: t.length, button: !document.querySelector('#show-all').hidden, first: t.some(l => l.includes('"line 1 of 10000"')), last: t.some(l => l.includes('"line 10000 of 10000"'))}; })()`
		b.eval(state, &shown)
		if shown.Rendered > 3000 || !shown.Button || shown.First || !shown.Last {
			t.Fatalf("the console shows %d lines (want the last ≤3000: line 10000, not line 1), show-all button %v, line 1 %v, line 10000 %v", shown.Rendered, shown.Button, shown.First, shown.Last)
		}
		t0 := time.Now()
		b.run(chromedp.Click(chromedp.CSS("#show-all")))
		b.eval(state, &shown)
		if shown.Rendered != shown.Total || shown.Button || !shown.First || !shown.Last {
			t.Fatalf("after show all: %d of %d lines, button %v, line 1 %v, line 10000 %v", shown.Rendered, shown.Total, shown.Button, shown.First, shown.Last)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("showing 10,000 lines took %s", d)
		}
	})

	t.Run("phone width and other pages", func(t *testing.T) {
		b.t = t
		for _, path := range []string{"/ui/plugins/", "/ui/plugins/uitest/", "/ui/agents/"} {
			b.run(chromedp.Navigate(base + path))
			var text string
			b.eval(`document.querySelector('main').textContent`, &text)
			if !strings.Contains(text, "uitest") && !strings.Contains(text, "local") {
				t.Errorf("%s: %q", path, text)
			}
		}
		var rel string
		b.run(chromedp.Navigate(base + "/ui/plugins/uitest/"))
		b.eval(`document.querySelector('td a[href^="/ui/releases/"]').getAttribute('href')`, &rel)
		b.run(chromedp.Navigate(base + rel))
		var params string
		b.eval(`document.querySelector('#action-train').closest('section').textContent`, &params)
		if !strings.Contains(params, "epochs") || !strings.Contains(params, "delay_ms") || !strings.Contains(params, "integer") {
			t.Errorf("release page, action train: %q, want its params schema", params)
		}
		b.run(chromedp.Navigate(base + "/ui/jobs/"))
		b.waitFor("the jobs listed", `({ok: document.querySelectorAll('#jobs tr[data-id]').length >= 5})`, 30*time.Second)
		b.screenshot(filepath.Join(out, "jobs-all.png"))
		b.run(chromedp.EmulateViewport(390, 844))
		for _, path := range []string{"/ui/plugins/", "/ui/jobs/"} {
			b.run(chromedp.Navigate(base + path))
			b.waitFor("the page laid out at phone width", `(() => ({ok: document.readyState === 'complete' && document.documentElement.scrollWidth <= innerWidth && !!document.querySelector('main h1'), w: document.documentElement.scrollWidth}))()`, 10*time.Second)
		}
		b.waitFor("the jobs listed", `({ok: document.querySelectorAll('#jobs tr[data-id]').length >= 5})`, 30*time.Second)
		b.screenshot(filepath.Join(out, "jobs-phone.png"))
		if trainID != "" {
			b.run(chromedp.Navigate(base + "/ui/jobs/" + trainID + "/"))
			b.waitFor("the job page at phone width", `(() => { const s = `+pageState+`; s.ok = s.done && document.documentElement.scrollWidth <= innerWidth; s.w = document.documentElement.scrollWidth; return s; })()`, 30*time.Second)
			b.screenshot(filepath.Join(out, "job-phone.png"))
		}
		b.run(chromedp.EmulateViewport(1280, 900))
	})

	t.Run("sign out", func(t *testing.T) {
		b.t = t
		b.run(chromedp.Navigate(base+"/ui/jobs/"), chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#token")))
		b.run(chromedp.Navigate(base+"/ui/jobs/"), chromedp.WaitVisible(chromedp.CSS("#token")))
		var loc string
		b.eval(`location.pathname + location.search`, &loc)
		if loc != "/ui/signin/?next=%2Fui%2Fjobs%2F" {
			t.Errorf("signed out, /ui/jobs/ went to %s", loc)
		}
	})
}
