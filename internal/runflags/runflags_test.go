package runflags

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"

	"github.com/spf13/pflag"
)

func parse(t *testing.T, args ...string) *Flags {
	t.Helper()
	var f Flags
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &f
}

func TestDefaults(t *testing.T) {
	f := parse(t)
	if f.Path != "." || f.Params != "{}" || f.RayAddress != "auto" || !f.Debug || f.InferPath != "/" || f.Output != "text" || f.Mode != "" {
		t.Errorf("defaults = %+v", f)
	}
	if err := f.Check(synapse.ModeLocal); err != nil {
		t.Errorf("Check of defaults: %v", err)
	}
}

func TestNormalizeMode(t *testing.T) {
	for in, want := range map[string]synapse.Mode{"local": "local", "TASK": "task", " job ": "job", "jobs-api": "job", "remote": "remote"} {
		if got, err := NormalizeMode(in); err != nil || got != want {
			t.Errorf("NormalizeMode(%q) = %q, %v", in, got, err)
		}
	}
	_, err := NormalizeMode("cloud")
	var ue *UsageError
	if !errors.As(err, &ue) || ue.ExitCode() != 2 || err.Error() != `--mode: must be one of local, task, job, remote (got "cloud")` {
		t.Errorf("NormalizeMode(cloud) = %v", err)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		args []string
		mode synapse.Mode
		want string // "" = valid
	}{
		{[]string{"--gpus", "1"}, synapse.ModeLocal, "--gpus: not supported in local mode"},
		{[]string{"--cpus", "2"}, synapse.ModeLocal, "--cpus: not supported in local mode"},
		{[]string{"--gpus", "1", "--cpus", "0.5"}, synapse.ModeJob, ""},
		{[]string{"--gpus", "-1"}, synapse.ModeJob, "--gpus: must be >= 0 (got -1)"},
		{[]string{"--gpus", "NaN"}, synapse.ModeJob, "--gpus: must be a number (got NaN)"},
		{[]string{"--cpus", "Inf"}, synapse.ModeTask, "--cpus: must be a number (got +Inf)"},
		{[]string{"--cpus", "-inf"}, synapse.ModeJob, "--cpus: must be a number (got -Inf)"},
		{[]string{"--gpus", "1.5"}, synapse.ModeJob, "--gpus: must be a whole number when above 1: Ray takes fractions of one unit only (got 1.5; use 1 or 2)"},
		{[]string{"--cpus", "0.25", "--gpus", "0.5"}, synapse.ModeJob, ""},
		{[]string{"--cpus", "2", "--gpus", "4"}, synapse.ModeTask, ""},
		{[]string{"--resources", "worker_node=1", "--resources", "accelerator=0.5"}, synapse.ModeJob, ""},
		{[]string{"--resources", "worker_node"}, synapse.ModeJob, `--resources: want NAME=N, a custom Ray resource and a number (got "worker_node")`},
		{[]string{"--resources", "=1"}, synapse.ModeTask, "--resources: want NAME=N"},
		{[]string{"--resources", "x=1.5"}, synapse.ModeJob, "--resources: x: must be a whole number when above 1"},
		{[]string{"--resources", "x=1"}, synapse.ModeLocal, "--resources: not supported in local mode"},
		{[]string{"-o", "yaml"}, synapse.ModeLocal, `--output: must be text or json (got "yaml")`},
		{[]string{"--env", "A=1", "--env", "B=x=y"}, synapse.ModeLocal, ""},
		{[]string{"--env", "NOVALUE"}, synapse.ModeLocal, `--env: want KEY=VALUE (got "NOVALUE")`},
		{[]string{"--env", "=v"}, synapse.ModeLocal, `--env: want KEY=VALUE (got "=v")`},
		{[]string{"--dlv"}, synapse.ModeLocal, ""},
		{[]string{"--dlv"}, synapse.ModeTask, "--dlv: only works in local mode"},
		{[]string{"--debug-sdk"}, synapse.ModeJob, "--debug-sdk: only works in local mode"},
		{[]string{"-i", "{bad"}, synapse.ModeRemote, "--input: must be valid JSON"},
		{[]string{"-i", `{"image": "x.png"}`}, synapse.ModeRemote, ""},
		{[]string{"--agent", "2", "--release", "1.0.0", "--no-wait", "--stop-on-interrupt"}, synapse.ModeRemote, ""},
		{[]string{"--agent", "-1"}, synapse.ModeRemote, `--agent: want an agent ID or name from synapse agent list (got "-1")`},
		{[]string{"--agent", " "}, synapse.ModeRemote, `--agent: want an agent ID or name from synapse agent list (got " ")`},
		{[]string{"--agent", "2"}, synapse.ModeJob, "--agent: only works in remote mode"},
		{[]string{"--release", "1.0"}, synapse.ModeLocal, "--release: only works in remote mode"},
		{[]string{"--no-wait"}, synapse.ModeTask, "--no-wait: only works in job and remote modes"},
		{[]string{"--cpus", "1"}, synapse.ModeRemote, "--cpus: not supported in remote mode: the backend and its agent decide"},
		{[]string{"--gpus", "1"}, synapse.ModeRemote, "--gpus: not supported in remote mode"},
		{[]string{"--memory", "1G"}, synapse.ModeRemote, "--memory: not supported in remote mode"},
		{[]string{"--ray-address", "auto"}, synapse.ModeRemote, "--ray-address: not supported in remote mode"},
		{[]string{"--resources", "x=1"}, synapse.ModeRemote, "--resources: not supported in remote mode"},
		{[]string{"--env", "A=1"}, synapse.ModeRemote, "--env: not supported in remote mode: the backend names its jobs and sets their environment"},
		{[]string{"--env-file", "x.toml"}, synapse.ModeRemote, "--env-file: not supported in remote mode"},
		{[]string{"--job-id", "j1"}, synapse.ModeRemote, "--job-id: not supported in remote mode"},
		{[]string{"--lang", "ko"}, synapse.ModeRemote, ""},
	}
	for _, tt := range tests {
		err := parse(t, tt.args...).Check(tt.mode)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v in %s: %v", tt.args, tt.mode, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("%v in %s: error = %v, want %q", tt.args, tt.mode, err, tt.want)
		}
	}
}

func TestRemoteAction(t *testing.T) {
	for in, want := range map[string]string{"infer": "inference", "deploy": "deployment", "train": "train", "inference": "inference"} {
		if got := RemoteAction(in); got != want {
			t.Errorf("RemoteAction(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInferParams(t *testing.T) {
	tests := []struct {
		args           []string
		action, params string
		want, wantErr  string
	}{
		{nil, "train", `{"a":1}`, `{"a":1}`, ""},
		{[]string{"-i", `{"img":"x"}`}, "infer", `{"a":1}`, `{"a":1,"input":{"img":"x"},"path":"/"}`, ""},
		{[]string{"-i", `[1]`, "--infer-path", "/predict"}, "inference", `{}`, `{"input":[1],"path":"/predict"}`, ""},
		{[]string{"-i", `{}`}, "train", `{}`, "", "--input: only works with the infer action"},
		{[]string{"-i", `{}`}, "infer", `[1]`, "", "--params: must be a JSON object"},
	}
	for _, tt := range tests {
		got, err := parse(t, tt.args...).InferParams(tt.action, []byte(tt.params))
		switch {
		case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
			t.Errorf("%v %s: error %v, want %q", tt.args, tt.action, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || string(got) != tt.want):
			t.Errorf("%v %s: got %s, %v, want %s", tt.args, tt.action, got, err, tt.want)
		}
	}
}

func TestNoDebug(t *testing.T) {
	f := parse(t, "--no-debug")
	if err := f.Check(synapse.ModeRemote); err != nil || f.Debug {
		t.Errorf("--no-debug: Debug = %v, %v", f.Debug, err)
	}
	f = parse(t, "--debug=false")
	if f.Check(synapse.ModeRemote) != nil || f.Debug {
		t.Errorf("--debug=false: Debug = %v", f.Debug)
	}
}

func TestEnvValues(t *testing.T) {
	f := parse(t, "--env", "A=1", "--env", "B=x=y", "--env", "A=2", "--env", "EMPTY=")
	got := f.EnvValues()
	if got["A"] != "2" || got["B"] != "x=y" || got["EMPTY"] != "" || len(got) != 3 {
		t.Errorf("EnvValues = %v", got)
	}
}

func TestReadParams(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.json")
	if err := os.WriteFile(file, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadParams("@"+file, nil); err != nil || string(b) != `{"a":1}` {
		t.Errorf("@file = %s, %v", b, err)
	}
	if b, err := ReadParams("-", strings.NewReader(`{"b":2}`)); err != nil || string(b) != `{"b":2}` {
		t.Errorf("stdin = %s, %v", b, err)
	}
	if b, err := ReadParams(`{"c":3}`, nil); err != nil || string(b) != `{"c":3}` {
		t.Errorf("inline = %s, %v", b, err)
	}
	_, err := ReadParams("@"+filepath.Join(dir, "missing.json"), nil)
	if err == nil || !strings.Contains(err.Error(), "missing.json does not exist") || !strings.HasPrefix(err.Error(), "--params: ") {
		t.Errorf("missing file: %v", err)
	}
}
