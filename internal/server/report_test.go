package server

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// jobToken is the job token of a running job of the process agent, read
// from its process's environment (the token is stored only hashed).
func jobToken(t *testing.T, agent *ProcessAgent, jobID string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(agent.file(jobID, ".pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err == nil {
				for kv := range strings.SplitSeq(string(env), "\x00") {
					if tk, ok := strings.CutPrefix(kv, "SYNAPSE_ACCESS_TOKEN="); ok {
						return tk
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: no process with a job token", jobID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consoleText waits for the job's console log to be closed and returns it.
func (f *apiFixture) consoleText(t *testing.T, id string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		j, err := f.store.GetJob(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.ConsoleClosed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: console log not closed", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines, err := f.store.Console(t.Context(), id, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Line + "\n")
	}
	return b.String()
}

// TestRunReportEndsWithTheRun: the plugin binary's final report (its job
// token's PATCH with a terminal status) is recorded, but the job ends only
// when its process does: it stays RUNNING and keeps its slot meanwhile,
// then ends with the reported status and result, not the process's exit 0
// and printed result.
func TestRunReportEndsWithTheRun(t *testing.T) {
	var api *API
	f := newRunServer(t, 1, func(a *API) { api = a })
	agent := api.Runners["local"].(*ProcessAgent)
	tests := []struct {
		name, report, status, result string
	}{
		// The binary's own final report, the same status, comes last.
		{"SUCCEEDED", `{"status":"SUCCEEDED","result":{"reported":true}}`, "SUCCEEDED", `{"result":"not cancelled"}`},
		// The binary's own SUCCEEDED is refused: another status.
		{"FAILED wins over exit 0", `{"status":"FAILED","result":{"error":"reported"},"meta":{"error":{"error_type":"x","message":"reported"}}}`, "FAILED", `{"error":"reported"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"wait","params":{"seconds":3},"debug":true}`)
			id := v.(map[string]any)["id"].(string)
			tk := jobToken(t, agent, id)
			f.waitJob(t, id, func(j map[string]any) bool { return j["status"] == "RUNNING" })
			_, v = f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"echo","debug":true}`)
			next := v.(map[string]any)["id"].(string)

			status, v := f.call(t, "PATCH", "/jobs/"+id+"/", tk, tt.report)
			if status != 200 || v.(map[string]any)["status"] != "RUNNING" {
				t.Fatalf("the report = %d %v, want 200 with the job RUNNING", status, v)
			}
			if status, v := f.call(t, "PATCH", "/jobs/"+id+"/", tk, tt.report); status != 200 {
				t.Errorf("the report again (a retry) = %d %v, want 200", status, v)
			}
			_, v = f.call(t, "GET", "/jobs/"+id+"/", f.admin, "")
			if j := v.(map[string]any); j["status"] != "RUNNING" || j["completed"] != nil {
				t.Errorf("after the report, while the process runs: %v, want RUNNING", j)
			}
			_, v = f.call(t, "GET", "/jobs/"+next+"/", f.admin, "")
			if j := v.(map[string]any); j["status"] != "PENDING" {
				t.Errorf("the next job = %s while the reported one's process runs, want PENDING (its slot is taken)", j["status"])
			}
			j := f.waitJob(t, id, ended)
			if j["status"] != tt.status || jsonText(j["result"]) != tt.result {
				t.Errorf("job = %s %s, want %s %s", j["status"], jsonText(j["result"]), tt.status, tt.result)
			}
			if j := f.waitJob(t, next, ended); j["status"] != "SUCCEEDED" {
				t.Errorf("the next job = %v", j)
			}
		})
	}
}

// TestStopThenReport: a stopped job's binary reports its end after the
// stop; that is a 200 that changes nothing, so its console log ends
// without a reporting warning. Other transitions are still refused.
func TestStopThenReport(t *testing.T) {
	var api *API
	f := newRunServer(t, 1, func(a *API) { api = a })
	_, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"wait","params":{"seconds":60},"debug":true}`)
	id := v.(map[string]any)["id"].(string)
	jobToken(t, api.Runners["local"].(*ProcessAgent), id) // its process runs
	f.waitJob(t, id, func(j map[string]any) bool { return j["status"] == "RUNNING" })
	if status, v := f.call(t, "POST", "/v2/jobs/"+id+"/stop/", f.admin, ""); status != 200 {
		t.Fatalf("stop = %d %v", status, v)
	}
	if text := f.consoleText(t, id); strings.Contains(text, "WARNING") {
		t.Errorf("the stopped job's console log has a warning:\n%s", text)
	}
	j := f.waitJob(t, id, ended)
	if j["status"] != "STOPPED" || j["result"] != nil {
		t.Errorf("stopped job = %v, want STOPPED, no result", j)
	}

	// The same on a job no agent runs any more, with its token still live.
	job, err := f.store.CreateJob(t.Context(), store.Job{ReleaseID: f.job.ReleaseID, Agent: "local", Action: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.UpdateJob(t.Context(), job.ID, store.JobUpdate{Status: store.StatusStopped}); err != nil {
		t.Fatal(err)
	}
	jobTk, _, err := f.store.CreateToken(t.Context(), "job", store.TokenJob, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, token, body string
		status            int
	}{
		{"a final report after the stop", jobTk, `{"status":"FAILED","result":{"error":"cancelled"}}`, 200},
		{"another one", jobTk, `{"status":"SUCCEEDED","result":{"x":1},"console_logs":"late"}`, 200},
		{"running again", jobTk, `{"status":"RUNNING"}`, 400},
		{"records after the end", jobTk, `{"progress_record":{}}`, 400},
		{"an admin's other final status", f.admin, `{"status":"FAILED"}`, 400},
	}
	for _, s := range steps {
		if status, v := f.call(t, "PATCH", "/jobs/"+job.ID+"/", s.token, s.body); status != s.status {
			t.Errorf("%s: %d %v, want %d", s.name, status, v, s.status)
		}
	}
	got, err := f.store.GetJob(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if lines, _ := f.store.Console(t.Context(), job.ID, 0, 10); got.Status != store.StatusStopped || got.Result != nil || len(lines) != 0 {
		t.Errorf("job after the reports = %s %s, %d console lines; want STOPPED as it was", got.Status, got.Result, len(lines))
	}
}

// TestStopDiscardsReport: a run's final report not yet applied (its
// process still runs) is discarded by a stop: the STOPPED job carries none
// of the result, meta or records it reported.
func TestStopDiscardsReport(t *testing.T) {
	var api *API
	f := newRunServer(t, 1, func(a *API) { api = a })
	_, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":1,"action":"wait","params":{"seconds":60},"debug":true}`)
	id := v.(map[string]any)["id"].(string)
	tk := jobToken(t, api.Runners["local"].(*ProcessAgent), id)
	f.waitJob(t, id, func(j map[string]any) bool { return j["status"] == "RUNNING" })
	report := `{"status":"SUCCEEDED","result":{"fake":1},"meta":{"fake":1},"progress_record":{"fake":1}}`
	if status, v := f.call(t, "PATCH", "/jobs/"+id+"/", tk, report); status != 200 {
		t.Fatalf("report = %d %v", status, v)
	}
	if status, v := f.call(t, "POST", "/v2/jobs/"+id+"/stop/", f.admin, ""); status != 200 {
		t.Fatalf("stop = %d %v", status, v)
	}
	j := f.waitJob(t, id, ended)
	if text := jsonText(j); j["status"] != "STOPPED" || j["result"] != nil || strings.Contains(text, "fake") {
		t.Errorf("stopped job = %s, want STOPPED with nothing of the report", text)
	}
}
