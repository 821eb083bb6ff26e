// Package runflags defines the flags of `plugin run`, shared by the synapse
// CLI and plugin binaries so both accept and check them the same way.
package runflags

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	synapse "github.com/synapse-sdk/synapse-go"
)

// ModeDescriptions are the one-line descriptions shown by the mode prompt.
var ModeDescriptions = []struct {
	Mode synapse.Mode
	Text string
}{
	{synapse.ModeLocal, "in this process (best for debugging)"},
	{synapse.ModeTask, "on a reused Ray worker; result returned at once"},
	{synapse.ModeJob, "as a Ray job, with log streaming"},
	{synapse.ModeRemote, "through the Synapse backend"},
}

// Flags holds the values of `plugin run` flags.
type Flags struct {
	Plugin     string
	Path       string
	Params     string
	Mode       string
	Lang       string
	Env        []string
	EnvFile    string
	JobID      string
	RayAddress string
	GPUs       float64
	CPUs       float64
	Debug      bool
	Host       string
	Token      string
	Input      string
	InferPath  string
	DebugSDK   bool
	Dlv        bool
	Output     string
	Verbose    bool // registered by the caller: the CLI has it as a global flag

	Memory          string        // job and task modes: "512MiB", "2G", or bytes
	Resources       []string      // job and task modes: custom Ray resources, NAME=N
	NoWait          bool          // job mode: return after submission
	StopOnInterrupt bool          // job mode: Ctrl-C stops the job instead of the following
	StartTimeout    time.Duration // job mode: fail a job PENDING for longer
	Arch            string        // task and job modes: the cluster's GOARCH
	Replicas        int           // task mode: Serve replicas
	MaxOngoing      int           // task mode: runs per replica at once
	ServeAddress    string        // task mode: the Serve HTTP proxy
	ProxyOnly       bool          // task mode: every call through the Serve proxy
	Agent           string        // remote mode: the backend agent's ID or name ("": config.json's, else the only one)
	Release         string        // remote mode: the release version to run ("" the newest)

	memoryBytes int64
	resources   map[string]float64

	fs *pflag.FlagSet
}

// Register defines the flags on fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVarP(&f.Plugin, "plugin", "p", "", "plugin code (default from config.yaml; needed for remote mode)")
	fs.StringVar(&f.Path, "path", ".", "plugin directory or config.yaml path")
	fs.StringVar(&f.Params, "params", "{}", "action params as JSON; @file.json reads a file, - reads stdin")
	fs.StringVarP(&f.Mode, "mode", "m", "", "local, task, job (alias jobs-api) or remote (default: a prompt on a terminal, else local)")
	fs.StringArrayVar(&f.Env, "env", nil, "KEY=VALUE for the action's env (repeatable; highest precedence)")
	fs.StringVar(&f.Lang, "lang", "", "language of the run's localized messages, e.g. en or ko (default $SYNAPSE_LANGUAGE, else en)")
	fs.StringVar(&f.EnvFile, "env-file", "", "TOML file of env values")
	fs.StringVar(&f.JobID, "job-id", "", "job identifier passed to the run")
	fs.StringVar(&f.RayAddress, "ray-address", "auto", "Ray address for task and job modes")
	fs.Float64Var(&f.GPUs, "gpus", 0, "GPUs for task and job modes")
	fs.Float64Var(&f.CPUs, "cpus", 0, "CPUs for task and job modes")
	fs.BoolVar(&f.Debug, "debug", true, "debug flag sent to the backend in remote mode (--no-debug to clear)")
	fs.Bool("no-debug", false, "do not send the debug flag in remote mode")
	fs.StringVar(&f.Host, "host", "", "backend host for remote mode")
	fs.StringVarP(&f.Token, "token", "t", "", "access token for remote mode")
	fs.StringVarP(&f.Input, "input", "i", "", "inference input JSON (remote infer)")
	fs.StringVar(&f.InferPath, "infer-path", "/", "inference endpoint path (remote infer)")
	fs.BoolVar(&f.DebugSDK, "debug-sdk", false, "build the plugin against this SDK checkout")
	fs.BoolVar(&f.Dlv, "dlv", false, "run under the Delve debugger (local mode)")
	fs.StringVarP(&f.Output, "output", "o", "text", "text or json (the result only, machine-readable)")
	fs.StringVar(&f.Memory, "memory", "", "memory for task and job modes, e.g. 512MiB, 2GiB or bytes")
	fs.StringArrayVar(&f.Resources, "resources", nil, "custom Ray resource for task and job modes, NAME=N (repeatable), e.g. worker_node=1")
	fs.BoolVar(&f.NoWait, "no-wait", false, "job and remote modes: print the job ID and return right after submission")
	fs.BoolVar(&f.StopOnInterrupt, "stop-on-interrupt", false, "job and remote modes: Ctrl-C stops the job (default: only stops following it)")
	fs.DurationVar(&f.StartTimeout, "start-timeout", 10*time.Minute, "job mode: fail if the job is still PENDING after this long")
	fs.StringVar(&f.Arch, "arch", "amd64", "task and job modes: the cluster's CPU architecture (GOARCH)")
	fs.IntVar(&f.Replicas, "replicas", 1, "task mode: how many workers (Ray Serve replicas)")
	fs.IntVar(&f.MaxOngoing, "max-ongoing-requests", 1, "task mode: runs one worker takes at once")
	fs.StringVar(&f.ServeAddress, "serve-address", "", "task mode: the Ray Serve HTTP proxy (default: the Ray head's host, port 8000)")
	fs.BoolVar(&f.ProxyOnly, "proxy-only", false, "task mode: send every call through the Serve proxy (by default calls go straight to a worker known to run)")
	fs.StringVar(&f.Agent, "agent", "", "remote mode: the backend agent's ID or name (default: the one synapse agent select chose, else the backend's only agent)")
	fs.StringVar(&f.Release, "release", "", "remote mode: the release version to run (default: the newest)")
}

// UsageError is a bad flag or argument. The CLI exits 2 for it.
type UsageError struct {
	Flag    string
	Message string
}

func (e *UsageError) Error() string {
	if e.Flag == "" {
		return e.Message
	}
	return "--" + e.Flag + ": " + e.Message
}

// ExitCode returns 2.
func (e *UsageError) ExitCode() int { return 2 }

// Changed reports whether flag name was given.
func (f *Flags) Changed(name string) bool { return f.fs != nil && f.fs.Changed(name) }

// NormalizeMode returns the canonical mode for s, accepting "jobs-api" for job.
func NormalizeMode(s string) (synapse.Mode, error) {
	switch m := synapse.Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case synapse.ModeLocal, synapse.ModeTask, synapse.ModeJob, synapse.ModeRemote:
		return m, nil
	case "jobs-api":
		return synapse.ModeJob, nil
	}
	return "", &UsageError{Flag: "mode", Message: fmt.Sprintf("must be one of local, task, job, remote (got %q)", s)}
}

// Check validates the flags after parsing. mode is the resolved mode.
func (f *Flags) Check(mode synapse.Mode) error {
	if f.Changed("no-debug") {
		f.Debug = false
	}
	if err := CheckOutput(f.Output); err != nil {
		return err
	}
	if err := checkEnv(f.Env); err != nil {
		return err
	}
	if err := checkLang(f.Lang); err != nil {
		return err
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"gpus", f.GPUs}, {"cpus", f.CPUs}} {
		if err := CheckResource(r.v); err != nil {
			return &UsageError{Flag: r.flag, Message: err.Error()}
		}
	}
	if f.Memory != "" {
		n, err := ParseBytes(f.Memory)
		if err != nil {
			return &UsageError{Flag: "memory", Message: err.Error()}
		}
		f.memoryBytes = n
	}
	if len(f.Resources) > 0 {
		f.resources = map[string]float64{}
		for _, kv := range f.Resources {
			name, value, ok := strings.Cut(kv, "=")
			n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if !ok || strings.TrimSpace(name) == "" || err != nil {
				return &UsageError{Flag: "resources", Message: fmt.Sprintf("want NAME=N, a custom Ray resource and a number (got %q)", kv)}
			}
			if err := CheckResource(n); err != nil {
				return &UsageError{Flag: "resources", Message: fmt.Sprintf("%s: %v", name, err)}
			}
			f.resources[strings.TrimSpace(name)] = n
		}
	}
	if f.StartTimeout <= 0 {
		return &UsageError{Flag: "start-timeout", Message: fmt.Sprintf("must be positive (got %v)", f.StartTimeout)}
	}
	switch f.Arch {
	case "amd64", "arm64":
	default:
		return &UsageError{Flag: "arch", Message: fmt.Sprintf("must be amd64 or arm64 (got %q)", f.Arch)}
	}
	if f.Replicas < 1 {
		return &UsageError{Flag: "replicas", Message: fmt.Sprintf("must be >= 1 (got %d)", f.Replicas)}
	}
	if f.MaxOngoing < 1 {
		return &UsageError{Flag: "max-ongoing-requests", Message: fmt.Sprintf("must be >= 1 (got %d)", f.MaxOngoing)}
	}
	if mode != synapse.ModeTask {
		for _, name := range []string{"replicas", "max-ongoing-requests", "serve-address", "proxy-only"} {
			if f.Changed(name) {
				return &UsageError{Flag: name, Message: "only works in task mode (--mode task)"}
			}
		}
	}
	if mode != synapse.ModeJob && mode != synapse.ModeRemote {
		for _, name := range []string{"no-wait", "stop-on-interrupt"} {
			if f.Changed(name) {
				return &UsageError{Flag: name, Message: "only works in job and remote modes (--mode job, --mode remote)"}
			}
		}
	}
	if mode != synapse.ModeRemote {
		for _, name := range []string{"agent", "release"} {
			if f.Changed(name) {
				return &UsageError{Flag: name, Message: "only works in remote mode (--mode remote)"}
			}
		}
	} else {
		for _, name := range []string{"cpus", "gpus", "memory", "resources", "ray-address", "arch"} {
			if f.Changed(name) {
				return &UsageError{Flag: name, Message: "not supported in remote mode: the backend and its agent decide where and with what the job runs; pick the agent with --agent"}
			}
		}
		if f.Changed("start-timeout") {
			return &UsageError{Flag: "start-timeout", Message: "not supported in remote mode: the backend's agent decides when the job starts; no start timeout applies"}
		}
		for _, name := range []string{"env", "env-file", "job-id"} {
			if f.Changed(name) {
				return &UsageError{Flag: name, Message: "not supported in remote mode: the backend names its jobs and sets their environment (config.yaml env of the published release; the language with --lang)"}
			}
		}
		if id, err := strconv.ParseInt(strings.TrimSpace(f.Agent), 10, 64); f.Changed("agent") && (strings.TrimSpace(f.Agent) == "" || err == nil && id <= 0) {
			return &UsageError{Flag: "agent", Message: fmt.Sprintf("want an agent ID or name from synapse agent list (got %q)", f.Agent)}
		}
	}
	if mode == synapse.ModeLocal {
		for _, name := range []string{"gpus", "cpus", "memory", "resources"} {
			if f.Changed(name) {
				return &UsageError{Flag: name, Message: "not supported in local mode: local mode runs in this process and allocates no resources (GPUs, CPUs, memory); use --mode task or --mode job"}
			}
		}
	} else if f.Dlv {
		return &UsageError{Flag: "dlv", Message: "only works in local mode"}
	} else if f.DebugSDK {
		return &UsageError{Flag: "debug-sdk", Message: "only works in local mode (cluster builds use the SDK version of the plugin's go.mod)"}
	}
	if f.Changed("input") && !json.Valid([]byte(f.Input)) {
		return &UsageError{Flag: "input", Message: "must be valid JSON"}
	}
	return nil
}

// RemoteAction is the action the backend runs for name, with the Python
// CLI's short names in remote mode: infer is inference, deploy is
// deployment; any other name is itself.
func RemoteAction(name string) string {
	switch name {
	case "infer":
		return "inference"
	case "deploy":
		return "deployment"
	}
	return name
}

// InferParams adds --input and --infer-path to params (a JSON object) as
// the Python CLI does for infer: params.input is the --input JSON and
// params.path the --infer-path (default "/"). Without --input, params is
// returned as it is. --input with an action other than infer (inference)
// is a *UsageError, as is params that are not a JSON object.
func (f *Flags) InferParams(action string, params []byte) ([]byte, error) {
	if !f.Changed("input") {
		return params, nil
	}
	if action != "infer" && action != "inference" {
		return nil, &UsageError{Flag: "input", Message: fmt.Sprintf("only works with the infer action (got %q)", action)}
	}
	obj := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(params))) > 0 {
		if err := json.Unmarshal(params, &obj); err != nil || obj == nil {
			return nil, &UsageError{Flag: "params", Message: "must be a JSON object to take --input"}
		}
	}
	obj["input"] = json.RawMessage(f.Input)
	path, _ := json.Marshal(f.InferPath)
	obj["path"] = path
	return json.Marshal(obj)
}

// CheckResource checks a resource quantity the way Ray will: a finite
// number >= 0, and a whole number when above 1 (Ray takes fractions of one
// unit only).
func CheckResource(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("must be a number (got %v)", v)
	case v < 0:
		return fmt.Errorf("must be >= 0 (got %v)", v)
	case v > 1 && v != math.Trunc(v):
		return fmt.Errorf("must be a whole number when above 1: Ray takes fractions of one unit only (got %v; use %v or %v)", v, math.Floor(v), math.Ceil(v))
	}
	return nil
}

// CheckOutput validates an --output value.
func CheckOutput(out string) error {
	if out != "text" && out != "json" {
		return &UsageError{Flag: "output", Message: fmt.Sprintf("must be text or json (got %q)", out)}
	}
	return nil
}

// checkEnv validates --env values.
func checkEnv(env []string) error {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || strings.TrimSpace(k) == "" {
			return &UsageError{Flag: "env", Message: fmt.Sprintf("want KEY=VALUE (got %q)", kv)}
		}
	}
	return nil
}

// envValues parses KEY=VALUE flags into a map (later flags win).
func envValues(env []string) map[string]any {
	out := map[string]any{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		out[strings.TrimSpace(k)] = v
	}
	return out
}

// CustomResources returns the --resources values by name (nil for none).
func (f *Flags) CustomResources() map[string]float64 { return f.resources }

// MemoryBytes returns --memory in bytes (0 when not given), after Check.
func (f *Flags) MemoryBytes() int64 { return f.memoryBytes }

// ParseBytes parses a memory size: a number of bytes, or a number with a
// unit K, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024),
// optionally followed by B.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "B")
	units := []struct {
		suffix string
		mult   float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("want a positive size like 512MiB, 2GiB or 1073741824 (got %q)", s)
	}
	return int64(v * mult), nil
}

// EnvValues parses the --env flags into a map (later flags win), with
// the run's language as SYNAPSE_LANGUAGE: --lang, else an --env value,
// else $SYNAPSE_LANGUAGE (so it reaches runs on a cluster too).
func (f *Flags) EnvValues() map[string]any { return withLang(envValues(f.Env), f.Lang) }

// ReadParams returns the params JSON named by --params: the text itself,
// @file to read a file, or - to read stdin.
func ReadParams(value string, stdin io.Reader) ([]byte, error) {
	switch {
	case value == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, &UsageError{Flag: "params", Message: "read stdin: " + err.Error()}
		}
		return b, nil
	case strings.HasPrefix(value, "@"):
		b, err := os.ReadFile(value[1:])
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, &UsageError{Flag: "params", Message: fmt.Sprintf("file %s does not exist", value[1:])}
			}
			return nil, &UsageError{Flag: "params", Message: err.Error()}
		}
		return b, nil
	}
	return []byte(value), nil
}

// FormatFloat writes a resource amount without trailing zeros.
func FormatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// PipelineFlags are the flags of `plugin run-pipeline` (local mode only).
type PipelineFlags struct {
	Path    string
	Params  string
	Lang    string
	Env     []string
	EnvFile string
	JobID   string
	Output  string
	Resume  string
	WorkDir string
	Verbose bool // registered by the caller
}

// Register defines the flags on fs.
func (f *PipelineFlags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Path, "path", ".", "plugin directory or config.yaml path")
	fs.StringVar(&f.Params, "params", "{}", "initial params as JSON; @file.json reads a file, - reads stdin")
	fs.StringArrayVar(&f.Env, "env", nil, "KEY=VALUE for the actions' env (repeatable; highest precedence)")
	fs.StringVar(&f.Lang, "lang", "", "language of the actions' localized messages, e.g. en or ko (default $SYNAPSE_LANGUAGE, else en)")
	fs.StringVar(&f.EnvFile, "env-file", "", "TOML file of env values")
	fs.StringVar(&f.JobID, "job-id", "", "job identifier passed to every action")
	fs.StringVarP(&f.Output, "output", "o", "text", "text or json (the last action's result only)")
	fs.StringVar(&f.Resume, "resume", "", "resume the run with this ID: skip its completed actions")
	fs.StringVar(&f.WorkDir, "work-dir", "", "where runs keep their directories and checkpoints (default: under the user cache)")
}

// Check validates the flags after parsing.
func (f *PipelineFlags) Check() error {
	if err := CheckOutput(f.Output); err != nil {
		return err
	}
	if err := checkEnv(f.Env); err != nil {
		return err
	}
	if err := checkLang(f.Lang); err != nil {
		return err
	}
	if f.Resume != "" && f.Params != "{}" {
		return &UsageError{Flag: "params", Message: "a resumed run continues with its saved params; drop --params or --resume"}
	}
	return nil
}

// EnvValues parses the --env flags into a map (later flags win), with
// the language as for Flags.EnvValues.
func (f *PipelineFlags) EnvValues() map[string]any { return withLang(envValues(f.Env), f.Lang) }

// langPattern is a language code: ISO 639-1 or -2, maybe with a region or
// script (en, ko, pt-BR, zh-Hant).
var langPattern = regexp.MustCompile(`^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*$`)

func checkLang(lang string) error {
	if lang != "" && !langPattern.MatchString(lang) {
		return &UsageError{Flag: "lang", Message: fmt.Sprintf("want a language code such as en, ko or pt-BR (got %q)", lang)}
	}
	return nil
}

// withLang sets SYNAPSE_LANGUAGE in values: to lang when given, else keeps
// an --env value, else takes the environment's.
func withLang(values map[string]any, lang string) map[string]any {
	if lang == "" {
		if _, ok := values[synapse.LanguageEnv]; ok {
			return values
		}
		lang = os.Getenv(synapse.LanguageEnv)
	}
	if lang == "" {
		return values
	}
	if values == nil {
		values = map[string]any{}
	}
	values[synapse.LanguageEnv] = lang
	return values
}
