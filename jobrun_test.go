package synapse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// runJobCommand runs a binary's `job` command in-process with env set.
func runJobCommand(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for _, k := range []string{envActionEntrypoint, envActionParams, envActionParamsFile, envJobID} {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	set, err := newActionSet([]Action{wEcho, wFail, wCrash, NewAction("num", func(ctx *Context, p map[string]any) (int, error) { return 42, nil })})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code = runMain(set, append([]string{"job"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestJobCommand(t *testing.T) {
	stdout, _, code := runJobCommand(t, map[string]string{envActionEntrypoint: "echo", envActionParams: `{"n": 2}`, envJobID: "job-1", "REGION": "eu"})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	s := parseJobLog(stdout)
	if string(s.result) != `{"job":"job-1","n":2,"region":"eu"}` || s.err != nil || len(s.tail) != 0 {
		t.Fatalf("result %s, err %v, raw lines %q\n%s", s.result, s.err, s.tail, stdout)
	}
	var events int
	ps := newJobStream(func(e Event) {
		events++
		if e.JobID != "job-1" || e.Action != "echo" {
			t.Errorf("event %+v", e)
		}
	}, nil)
	ps.Write(stdout)
	if events != 4 { // progress 0, 1, 2 and the env log
		t.Errorf("%d events, want 4", events)
	}

	// The action can be given as an argument; a non-object result is wrapped.
	stdout, _, code = runJobCommand(t, nil, "num")
	if code != 0 || !strings.Contains(stdout, resultStart+"\n{\"result\":42}\n"+resultEnd) {
		t.Errorf("exit %d:\n%s", code, stdout)
	}

	// Params from a file.
	file := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(file, []byte(`{"n": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, _ = runJobCommand(t, map[string]string{envActionEntrypoint: "echo", envActionParamsFile: file})
	if !strings.Contains(string(parseJobLog(stdout).result), `"n":5`) {
		t.Errorf("params file not used:\n%s", stdout)
	}
}

func TestJobCommandFailures(t *testing.T) {
	tests := []struct {
		env  map[string]string
		code int
		kind string
		msg  string
	}{
		{map[string]string{envActionEntrypoint: "echo", envActionParams: `{"n": 0}`}, 2, protocol.KindValidation, "n: must be >= 1"},
		{map[string]string{envActionEntrypoint: "fail"}, 1, protocol.KindExecution, "no space left"},
		{map[string]string{envActionEntrypoint: "crash"}, 1, protocol.KindExecution, "panic: boom"},
		{map[string]string{envActionEntrypoint: "nope"}, 2, protocol.KindActionNotFound, `find action "nope"`},
		{map[string]string{}, 1, protocol.KindExecution, "SYNAPSE_ACTION_ENTRYPOINT is not set"},
		{map[string]string{envActionEntrypoint: "echo", envActionParamsFile: "/does/not/exist.json"}, 1, protocol.KindExecution, "read params file"},
	}
	for _, tt := range tests {
		stdout, stderr, code := runJobCommand(t, tt.env)
		s := parseJobLog(stdout)
		if code != tt.code || s.err == nil || s.err.Kind != tt.kind || !strings.Contains(s.err.Message, tt.msg) || s.result != nil {
			t.Errorf("%v: exit %d, error line %+v\nstdout:\n%s", tt.env, code, s.err, stdout)
		}
		if !strings.Contains(stderr, "Error:") {
			t.Errorf("%v: stderr lacks the error: %q", tt.env, stderr)
		}
	}
}

func TestJobStreamParsing(t *testing.T) {
	var events []Event
	var raw []string
	s := newJobStream(func(e Event) { events = append(events, e) }, func(l string) { raw = append(raw, l) })
	log := strings.Join([]string{
		"2026-11-27 INFO job_manager.py:581 -- Runtime env is setting up.",
		`{"type":"progress","time":"2026-11-27T00:00:00Z","level":"info","category":"c","current":1,"total":2,"percent":50}`,
		`{"type":"log","time":"2026-11-27T00:00:00Z","level":"info","event":"e","data":{"k":1}}`,
		`{"type":"unknown","x":1}`,
		resultStart, `{"early":true}`, resultEnd, // printed by the action itself: not the result
		"plain stderr line",
		resultStart, `{"final":`, `1}`, resultEnd,
		"Running entrypoint for job x: chmod ...",
	}, "\n")
	// Feed it in awkward chunks: the stream must not depend on chunk edges.
	for i := 0; i < len(log); i += 7 {
		s.Write(log[i:min(i+7, len(log))])
	}
	s.Close()
	if len(events) != 2 || events[0].Type != EventProgress || events[0].Percent != 50 || events[1].Data["k"] == nil {
		t.Errorf("events = %+v", events)
	}
	wantRaw := []string{"2026-11-27 INFO job_manager.py:581 -- Runtime env is setting up.", `{"type":"unknown","x":1}`, "plain stderr line", "Running entrypoint for job x: chmod ..."}
	if strings.Join(raw, "|") != strings.Join(wantRaw, "|") {
		t.Errorf("raw lines = %q", raw)
	}
	if v, err := unwrapResult(s.result); err != nil || v.(map[string]any)["final"] == nil {
		t.Errorf("result = %s (%v): the last marker pair must win", s.result, err)
	}
	if v, _ := unwrapResult([]byte(`{"result":[1,2]}`)); len(v.([]any)) != 2 {
		t.Errorf("wrapped result not unwrapped: %v", v)
	}
}

func TestJobOutcome(t *testing.T) {
	ok := parseJobLog(resultStart + "\n{\"a\":1}\n" + resultEnd + "\n")
	if v, err := jobOutcome("j", "a", &JobInfo{Status: JobSucceeded}, ok); err != nil || v.(map[string]any)["a"] != 1.0 {
		t.Errorf("succeeded: %v, %v", v, err)
	}
	if _, err := jobOutcome("j", "a", &JobInfo{Status: JobSucceeded}, parseJobLog("no markers\n")); err == nil || !strings.Contains(err.Error(), "has no result") {
		t.Errorf("succeeded without result: %v", err)
	}
	if _, err := jobOutcome("j", "a", &JobInfo{Status: JobStopped}, ok); !errors.Is(err, ErrJobStopped) {
		t.Errorf("stopped: %v", err)
	}
	typed := parseJobLog(`{"type":"error","error":{"kind":"execution","message":"bad","action":"a","cause":"canceled"}}` + "\n")
	_, err := jobOutcome("j", "a", &JobInfo{Status: JobFailed}, typed)
	var xe *ExecutionError
	if !errors.As(err, &xe) || xe.JobID != "j" || !errors.Is(err, context.Canceled) {
		t.Errorf("failed with typed error: %v", err)
	}
	untyped := parseJobLog("line 1\nSegmentation fault\n")
	_, err = jobOutcome("j", "a", &JobInfo{Status: JobFailed, ErrorType: "JOB_ENTRYPOINT_COMMAND_ERROR", Message: "exit code 139"}, untyped)
	if err == nil || !strings.Contains(err.Error(), "job j failed (JOB_ENTRYPOINT_COMMAND_ERROR): exit code 139") || !strings.Contains(err.Error(), "Segmentation fault") {
		t.Errorf("failed without typed error: %v", err)
	}
}

func TestJobResultWrapping(t *testing.T) {
	for in, wrap := range map[string]bool{`{"a":1}`: false, `{"result":"ok","b":1}`: false, `{"result":"ok"}`: true, `42`: true, `"s"`: true, `[1]`: true, `null`: true} {
		if got := needsWrap([]byte(in)); got != wrap {
			t.Errorf("needsWrap(%s) = %v, want %v", in, got, wrap)
		}
	}
	// An object whose only key is "result" survives the round trip.
	set, _ := newActionSet([]Action{NewAction("obj", func(ctx *Context, p map[string]any) (map[string]string, error) {
		return map[string]string{"result": "ok"}, nil
	})})
	t.Setenv(envActionEntrypoint, "obj")
	var out, errOut strings.Builder
	if code := runMain(set, []string{"job", "inputs=abc"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	v, err := unwrapResult(parseJobLog(out.String()).result)
	if m, ok := v.(map[string]any); err != nil || !ok || m["result"] != "ok" {
		t.Errorf("result = %#v, %v", v, err)
	}
}
