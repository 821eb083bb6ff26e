package server

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

const conformanceConfig = `{"code":"conformance","name":"Executor Conformance","env":{"LAYER":"config","FROM_CONFIG":"yes"},
"actions":{"echo":{},"job":{},"scalar":{},"env":{},"fail":{},"crash":{},"wait":{},"context":{}}}`

// newRunServer is the API with a process agent named "local" (ID 1),
// running maxJobs jobs at once, and the conformance plugin published.
func newRunServer(t *testing.T, maxJobs int, configure ...func(*API)) *apiFixture {
	t.Helper()
	z := releaseZip(t)
	dir := t.TempDir()
	releases := &Releases{Dir: filepath.Join(dir, "releases"), WorkDir: filepath.Join(dir, "work")}
	f := newAPI(t, func(a *API) {
		a.Releases, a.MaxJobs = releases, maxJobs
		agent := &ProcessAgent{Store: a.Store, Releases: releases, RunDir: filepath.Join(t.TempDir(), "run"), Grace: 2 * time.Second, Done: a.JobDone}
		a.Runners = map[string]Runner{"local": agent}
		for _, c := range configure {
			c(a)
		}
	})
	if status, v := f.publish(t, map[string]string{"plugin": "conformance", "version": "1.0", "config": conformanceConfig, "debug": "True"}, z); status != 201 {
		t.Fatalf("publish: %d %v", status, v)
	}
	return f
}

func (f *apiFixture) waitJob(t *testing.T, id string, done func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, v := f.call(t, "GET", "/jobs/"+id+"/", f.admin, "")
		j := v.(map[string]any)
		if done(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %v", id, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ended(j map[string]any) bool { return store.Terminal(j["status"].(string)) }

func TestRun(t *testing.T) {
	f := newRunServer(t, 4)
	status, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"echo","params":{"n":2,"text":"hey"},"debug":true,"language":"ko"}`)
	if status != 201 {
		t.Fatalf("run = %d %v", status, v)
	}
	j := f.waitJob(t, v.(map[string]any)["id"].(string), ended)
	if j["status"] != "SUCCEEDED" || jsonText(j["result"]) != `{"n":2,"text":"hey"}` || j["plugin_release"].(map[string]any)["version"] != "1.0" {
		t.Errorf("job = %v", j)
	}
	_, v = f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":"local","action":"env","debug":true}`)
	j = f.waitJob(t, v.(map[string]any)["id"].(string), ended)
	if jsonText(j["result"]) != `{"FROM_CONFIG":"yes","FROM_OPTION":"","LAYER":"config"}` {
		t.Errorf("env of a job = %v (config.yaml env must reach it)", j["result"])
	}

	// The plugin binary reports to the server as the Python SDK's worker
	// does: the progress and metrics records, and log entries.
	_, v = f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"context","debug":true,"language":"ko"}`)
	j = f.waitJob(t, v.(map[string]any)["id"].(string), ended)
	if j["status"] != "SUCCEEDED" || jsonText(j["result"].(map[string]any)["language"]) != "ko" {
		t.Fatalf("context job = %v", j)
	}
	cur := j["progress_record"].(map[string]any)["current_progress"].(map[string]any)
	if cur["overall"] != 100.0 || cur["time_elapsed"] == nil {
		t.Errorf("progress record = %v, want overall 100 and time_elapsed", j["progress_record"])
	}
	_, v = f.call(t, "GET", "/v2/job-logs/?job="+j["id"].(string)+"&per_page=1000", f.admin, "")
	events := map[string]int{}
	for _, e := range v.(map[string]any)["data"].([]any) {
		events[e.(map[string]any)["event"].(string)]++
	}
	if events["metric"] != 5 || events["visualization"] != 1 || events["trials"] != 1 || events["message"] < 3 || events["confusion"] != 1 {
		t.Errorf("log entries by event = %v", events)
	}

	before, _, _ := f.store.ListJobs(t.Context(), store.JobFilter{})
	tests := []struct {
		name, body string
		status     int
		text       string
	}{
		{"bad params: nothing runs", `{"agent":1,"action":"echo","params":{"n":0},"debug":true}`, 400, `"n":["must be \u003e= 1 (got 0)"]`},
		{"unknown action", `{"agent":1,"action":"trian","debug":true}`, 400, `is not an action of conformance 1.0 (actions: context, crash, echo, env, fail, job, scalar, wait)`},
		{"unknown key", `{"agent":1,"action":"echo","debug":true,"paramz":{}}`, 400, "unknown field"},
		{"unknown agent", `{"agent":7,"action":"echo","debug":true}`, 400, "no agent"},
		{"only a debug release, not asked for", `{"agent":1,"action":"echo"}`, 404, "publish it first"},
		{"unknown version", `{"agent":1,"action":"echo","version":"9"}`, 404, `has no release \"9\" (GET /plugin_releases/?plugin=conformance lists its releases)`},
	}
	for _, tt := range tests {
		status, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, tt.body)
		if status != tt.status || !strings.Contains(jsonText(v), tt.text) {
			t.Errorf("%s: %d %s, want %d containing %s", tt.name, status, jsonText(v), tt.status, tt.text)
		}
	}
	after, _, _ := f.store.ListJobs(t.Context(), store.JobFilter{})
	if len(after) != len(before) {
		t.Errorf("refused runs created %d jobs", len(after)-len(before))
	}
	if status, _ := f.call(t, "POST", "/plugins/nope/run/", f.admin, `{"action":"echo"}`); status != 404 {
		t.Errorf("unknown plugin: %d", status)
	}
}

func TestRunQueueAndStop(t *testing.T) {
	f := newRunServer(t, 1)
	_, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"wait","params":{"seconds":60},"debug":true}`)
	first := v.(map[string]any)["id"].(string)
	f.waitJob(t, first, func(j map[string]any) bool { return j["status"] == "RUNNING" })
	_, v = f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"echo","debug":true}`)
	second := v.(map[string]any)
	if second["status"] != "PENDING" || jsonText(second["meta"].(map[string]any)["queue"]) != `{"position":1,"reason":"slots_full"}` {
		t.Fatalf("second job = %v, want PENDING at queue position 1", second)
	}
	status, v := f.call(t, "POST", "/v2/jobs/"+first+"/stop/", f.admin, "")
	if status != 200 || v.(map[string]any)["data"].(map[string]any)["status"] != "STOPPED" {
		t.Fatalf("stop = %d %v", status, v)
	}
	if status, v := f.call(t, "POST", "/v2/jobs/"+first+"/stop/", f.admin, ""); status != 409 || !strings.Contains(jsonText(v), "INVALID_STATE") {
		t.Errorf("stop again = %d %v, want 409", status, v)
	}
	j := f.waitJob(t, second["id"].(string), ended)
	if j["status"] != "SUCCEEDED" {
		t.Errorf("the queued job = %v, want it to run once the slot is free", j)
	}

	// A waiting job can be stopped before it starts.
	_, v = f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"wait","params":{"seconds":60},"debug":true}`)
	running := v.(map[string]any)["id"].(string)
	f.waitJob(t, running, func(j map[string]any) bool { return j["status"] == "RUNNING" })
	_, v = f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"echo","debug":true}`)
	waiting := v.(map[string]any)["id"].(string)
	if status, v := f.call(t, "POST", "/v2/jobs/"+waiting+"/stop/", f.admin, ""); status != 200 || v.(map[string]any)["data"].(map[string]any)["status"] != "STOPPED" {
		t.Errorf("stop a waiting job = %d %v", status, v)
	}
	if status, _ := f.call(t, "POST", "/v2/jobs/"+running+"/stop/", f.admin, ""); status != 200 {
		t.Errorf("stop = %d", status)
	}
	if j := f.waitJob(t, waiting, ended); j["status"] != "STOPPED" || j["started"] != nil {
		t.Errorf("the stopped waiting job ran: %v", j)
	}
	// Its followers end at once: no agent will ever close its log.
	if got, err := f.store.GetJob(t.Context(), waiting); err != nil || !got.ConsoleClosed {
		t.Errorf("the console log of a job stopped while waiting is not closed: %+v, %v", got, err)
	}
}

// TestRunAgentChoice: a run without agent takes the only agent; with
// several, agent is required and the answer lists them.
func TestRunAgentChoice(t *testing.T) {
	one := newRunServer(t, 4)
	two := newRunServer(t, 4, func(a *API) {
		a.Agents = append(a.Agents, Agent{ID: 2, Name: "gpu", Kind: "process"})
		a.Runners["gpu"] = &ProcessAgent{Store: a.Store, Releases: a.Releases, RunDir: filepath.Join(t.TempDir(), "run"), Done: a.JobDone}
	})
	tests := []struct {
		name   string
		f      *apiFixture
		body   string
		status int
		text   string
	}{
		{"one agent, none named", one, `{"action":"echo","debug":true}`, 201, `"name":"local"`},
		{"two agents, none named", two, `{"action":"echo","debug":true}`, 400, `agent: required: this server has 2 agents; name one by ID or name (agents: 1 local, 2 gpu)`},
		{"two agents, one named", two, `{"agent":"gpu","action":"echo","debug":true}`, 201, `"name":"gpu"`},
		{"two agents, unknown", two, `{"agent":"cpu","action":"echo","debug":true}`, 400, `agent: no agent \"cpu\" here (agents: 1 local, 2 gpu)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, v := tt.f.call(t, "POST", "/plugins/conformance/run/", tt.f.admin, tt.body)
			if status != tt.status || !strings.Contains(jsonText(v), tt.text) {
				t.Errorf("%d %s, want %d containing %s", status, jsonText(v), tt.status, tt.text)
			}
			if status == 201 {
				tt.f.waitJob(t, v.(map[string]any)["id"].(string), ended)
			}
		})
	}
}

// TestPatchEndsTheRun: an admin's PATCH to a terminal status of a job an
// agent runs stops the run too, and the job keeps the admin's status.
func TestPatchEndsTheRun(t *testing.T) {
	for _, status := range []string{store.StatusFailed, store.StatusStopped} {
		var api *API
		f := newRunServer(t, 1, func(a *API) { api = a })
		_, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"wait","params":{"seconds":60},"debug":true}`)
		id := v.(map[string]any)["id"].(string)
		f.waitJob(t, id, func(j map[string]any) bool { return j["status"] == "RUNNING" })
		agent := api.Runners["local"].(*ProcessAgent)
		b, err := os.ReadFile(agent.file(id, ".pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(string(b))
		if code, v := f.call(t, "PATCH", "/jobs/"+id+"/", f.admin, `{"status":"`+status+`"}`); code != 200 || v.(map[string]any)["status"] != status {
			t.Fatalf("PATCH %s = %d %v", status, code, v)
		}
		for deadline := time.Now().Add(10 * time.Second); ownProcess(pid, id); {
			if time.Now().After(deadline) {
				t.Fatalf("PATCH %s: the job's process %d runs on", status, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if j := f.waitJob(t, id, ended); j["status"] != status {
			t.Errorf("PATCH %s: job = %v", status, j)
		}
		// Its slot is free: the next job runs.
		_, v = f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"echo","debug":true}`)
		if j := f.waitJob(t, v.(map[string]any)["id"].(string), ended); j["status"] != "SUCCEEDED" {
			t.Errorf("PATCH %s: the next job = %v", status, j)
		}
	}
}
