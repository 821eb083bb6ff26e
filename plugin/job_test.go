package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// runJobCommand runs a binary's `job` command in-process with env set.
func runJobCommand(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for _, k := range []string{worker.EnvActionEntrypoint, worker.EnvActionParams, worker.EnvActionParamsFile, worker.EnvJobID} {
		t.Setenv(k, "")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	set, err := synapse.NewActionSet([]synapse.Action{wEcho, wFail, wCrash, synapse.NewAction("num", func(ctx *synapse.Context, p map[string]any) (int, error) { return 42, nil })})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code = runMain(set, append([]string{"job"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestJobCommand(t *testing.T) {
	stdout, _, code := runJobCommand(t, map[string]string{worker.EnvActionEntrypoint: "echo", worker.EnvActionParams: `{"n": 2}`, worker.EnvJobID: "job-1", "REGION": "eu"})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	s := worker.ParseJobLog(stdout)
	if string(s.Result) != `{"job":"job-1","n":2,"region":"eu"}` || s.Err != nil || len(s.Tail) != 0 {
		t.Fatalf("result %s, err %v, raw lines %q\n%s", s.Result, s.Err, s.Tail, stdout)
	}
	var events int
	ps := worker.NewJobStream(func(e synapse.Event) {
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
	if code != 0 || !strings.Contains(stdout, worker.ResultStart+"\n{\"result\":42}\n"+worker.ResultEnd) {
		t.Errorf("exit %d:\n%s", code, stdout)
	}

	// Params from a file.
	file := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(file, []byte(`{"n": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, _ = runJobCommand(t, map[string]string{worker.EnvActionEntrypoint: "echo", worker.EnvActionParamsFile: file})
	if !strings.Contains(string(worker.ParseJobLog(stdout).Result), `"n":5`) {
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
		{map[string]string{worker.EnvActionEntrypoint: "echo", worker.EnvActionParams: `{"n": 0}`}, 2, protocol.KindValidation, "n: must be >= 1"},
		{map[string]string{worker.EnvActionEntrypoint: "fail"}, 1, protocol.KindExecution, "no space left"},
		{map[string]string{worker.EnvActionEntrypoint: "crash"}, 1, protocol.KindExecution, "panic: boom"},
		{map[string]string{worker.EnvActionEntrypoint: "nope"}, 2, protocol.KindActionNotFound, `find action "nope"`},
		{map[string]string{}, 1, protocol.KindExecution, "SYNAPSE_ACTION_ENTRYPOINT is not set"},
		{map[string]string{worker.EnvActionEntrypoint: "echo", worker.EnvActionParamsFile: "/does/not/exist.json"}, 1, protocol.KindExecution, "read params file"},
	}
	for _, tt := range tests {
		stdout, stderr, code := runJobCommand(t, tt.env)
		s := worker.ParseJobLog(stdout)
		if code != tt.code || s.Err == nil || s.Err.Kind != tt.kind || !strings.Contains(s.Err.Message, tt.msg) || s.Result != nil {
			t.Errorf("%v: exit %d, error line %+v\nstdout:\n%s", tt.env, code, s.Err, stdout)
		}
		if stderr != "" { // the error line is the one report: the CLI prints it once
			t.Errorf("%v: the error was printed to stderr too: %q", tt.env, stderr)
		}
	}
}

func TestJobResultWrapping(t *testing.T) {
	// An object whose only key is "result" survives the round trip.
	set, _ := synapse.NewActionSet([]synapse.Action{synapse.NewAction("obj", func(ctx *synapse.Context, p map[string]any) (map[string]string, error) {
		return map[string]string{"result": "ok"}, nil
	})})
	t.Setenv(worker.EnvActionEntrypoint, "obj")
	var out, errOut strings.Builder
	if code := runMain(set, []string{"job", "inputs=abc"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	v, err := worker.UnwrapResult(worker.ParseJobLog(out.String()).Result)
	if m, ok := v.(map[string]any); err != nil || !ok || m["result"] != "ok" {
		t.Errorf("result = %#v, %v", v, err)
	}
}
