package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets the tests run this package's main in a child process: the
// child is this test binary with SYNAPSE_EXAMPLE_MAIN set.
func TestMain(m *testing.M) {
	if os.Getenv("SYNAPSE_EXAMPLE_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

func runMain(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "SYNAPSE_EXAMPLE_MAIN=1"), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestMainEndToEnd(t *testing.T) {
	// DATASET_DIR from the OS loses to config.yaml's env; --env wins over both.
	stdout, stderr, code := runMain(t, []string{"DATASET_DIR=/data/os", "SEED=1"}, "plugin", "run", "train", "--params", `{"epochs": 2}`, "--env", "DATASET_DIR=/data/dogs")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var res TrainResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout)
	}
	if res.Epochs != 2 || res.Dataset != "/data/dogs" {
		t.Errorf("result = %+v", res)
	}
	for _, want := range []string{
		"INFO: Training small model on /data/dogs (seed 42)", // SEED from config.yaml beats the OS
		"INFO: [train] Progress: 0.0%",
		`INFO: [train] epoch_complete {"epoch":1,"loss":0.7143}`,
		"INFO: [train] Progress: 100.0% | ETA: 0.0s",
		"SUCCESS: Training completed",
	} {
		if !strings.Contains(stderr, want+"\n") {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestMainExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"plugin", "run", "train", "--params", `{"epochs": 0}`}, 2, "epochs: must be >= 1 (got 0)"},
		{[]string{"plugin", "run", "train", "--params", `{"epochs": 3, "fail_at_epoch": 1}`}, 1, "epoch 1: loss diverged"},
		{[]string{"plugin", "run", "trian"}, 2, `find action "trian": no such action (did you mean "train"?)`},
		{[]string{"plugin", "run", "train", "--mode", "job"}, 2, "a plugin binary runs actions in local mode only"},
		{[]string{"plugin", "run", "train", "--gpus", "1"}, 2, "--gpus: not supported in local mode"},
		{nil, 2, "Commands:"},
	}
	for _, tt := range tests {
		_, stderr, code := runMain(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", tt.args, code, tt.code, tt.msg, stderr)
		}
		if strings.Contains(stderr, "goroutine ") {
			t.Errorf("%v: stack trace printed for a user error:\n%s", tt.args, stderr)
		}
	}
}
