package executortest

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/steps"
)

// EchoParams are the params of the "echo" action.
type EchoParams struct {
	N    int    `json:"n" default:"1" validate:"min=1,max=100"`
	Text string `json:"text" default:"hi" validate:"max=64"`
}

// EchoResult is what "echo" returns.
type EchoResult struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

// WaitParams are the params of the "wait" action.
type WaitParams struct {
	// Mark is a file the action writes "cancelled" to when its Context is
	// cancelled (the suite runs on one machine, so every mode can see it).
	Mark    string  `json:"mark"`
	Seconds float64 `json:"seconds" default:"120" validate:"gt=0"`
}

// Actions returns the actions the suite runs, the same values the plugin at
// PluginDir serves:
//
//	echo    returns {n, text}; params n (1–100), text
//	job     returns {"job_id": ctx.JobID()}
//	scalar  returns 42
//	wrapped returns {"result": "ok"} (an object whose only key is result)
//	report  logs "reported" {k: 1}, a message, progress 1/2 and 2/2 in
//	        category "work", metrics {loss: 0.5} in category "train"
//	context uses every reporting call (ReportingAction); returns the
//	        run's progress record and language
//	env     returns the values of env keys LAYER, FROM_OPTION, FROM_CONFIG
//	fail    returns the error "disk full"
//	crash   panics with "boom"
//	wait    logs "started", then waits for cancellation (see WaitParams)
func Actions() []synapse.Action {
	return []synapse.Action{
		synapse.NewAction("echo", func(ctx *synapse.Context, p EchoParams) (EchoResult, error) {
			ctx.Log("started", map[string]any{"action": "echo"})
			return EchoResult(p), nil
		}),
		synapse.NewAction("job", func(ctx *synapse.Context, _ struct{}) (map[string]string, error) {
			return map[string]string{"job_id": ctx.JobID()}, nil
		}),
		synapse.NewAction("scalar", func(ctx *synapse.Context, _ struct{}) (int, error) { return 42, nil }),
		synapse.NewAction("wrapped", func(ctx *synapse.Context, _ struct{}) (map[string]string, error) {
			return map[string]string{"result": "ok"}, nil
		}),
		synapse.NewAction("report", func(ctx *synapse.Context, _ struct{}) (string, error) {
			ctx.Log("reported", map[string]any{"k": 1})
			ctx.LogMessage("reporting done", synapse.LevelSuccess)
			ctx.SetProgress(1, 2, "work")
			ctx.SetProgress(2, 2, "work")
			ctx.SetMetrics(map[string]any{"loss": 0.5}, "train")
			return "reported", nil
		}),
		ReportingAction(),
		synapse.NewAction("env", func(ctx *synapse.Context, _ struct{}) (map[string]string, error) {
			env := ctx.Env()
			return map[string]string{
				"LAYER":       env.GetString("LAYER", ""),
				"FROM_OPTION": env.GetString("FROM_OPTION", ""),
				"FROM_CONFIG": env.GetString("FROM_CONFIG", ""),
			}, nil
		}),
		synapse.NewAction("fail", func(ctx *synapse.Context, _ struct{}) (any, error) {
			return nil, errors.New("disk full")
		}),
		synapse.NewAction("crash", func(ctx *synapse.Context, _ struct{}) (any, error) { panic("boom") }),
		synapse.NewAction("wait", func(ctx *synapse.Context, p WaitParams) (any, error) {
			ctx.Log("started", map[string]any{"action": "wait"})
			select {
			case <-ctx.Done():
				if p.Mark != "" {
					_ = os.WriteFile(p.Mark, []byte("cancelled"), 0o644)
				}
				return nil, ctx.Err()
			case <-time.After(time.Duration(p.Seconds * float64(time.Second))):
				return "not cancelled", nil
			}
		}),
	}
}

// PNG is the image the "context" action reports as a visualization and
// as a log event's file (a 1×1 PNG).
var PNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// ContextResult is what the "context" action returns: the progress record
// as the action saw it, and the run's language.
type ContextResult struct {
	Progress synapse.ProgressRecord `json:"progress"`
	Language string                 `json:"language"`
}

// ReportingAction is the "context" action. It reports through every call
// of the run's Context: a steps orchestrator with three steps ("prepare"
// skipped, "train" with 997 progress updates and a metric series
// train/loss of 5 points with an "epoch" extra, "evaluate" with a
// visualization, a file, trials, a localized message, danger and critical
// messages), and progress category "optional" marked failed.
func ReportingAction() synapse.Action {
	return synapse.NewAction("context", func(ctx *synapse.Context, _ struct{}) (ContextResult, error) {
		reg := steps.NewRegistry()
		reg.Register(
			steps.New("prepare", 1, nil, steps.WithSkipCheck(func(*steps.Context) bool { return true })),
			steps.New("train", 3, func(sc *steps.Context) steps.Result {
				const n = 997
				for i := 0; i <= n; i++ {
					sc.SetProgress(i, n)
				}
				for epoch := range 5 {
					sc.LogMetric("train", "loss", 1/float64(epoch+1), map[string]any{"epoch": epoch})
				}
				return steps.Succeeded(nil)
			}),
			steps.New("evaluate", 0, func(sc *steps.Context) steps.Result {
				if err := sc.LogVisualization("val", "predictions", 0, synapse.File{Data: PNG, Name: "pred-0.png"}, map[string]any{"iou": 0.75}); err != nil {
					return steps.Failed(err)
				}
				if err := sc.LogFile(synapse.LevelInfo, "confusion", map[string]any{"classes": 2}, synapse.File{Data: PNG, Name: "cm.png"}); err != nil {
					return steps.Failed(err)
				}
				sc.LogTrials(synapse.Trials{
					Trials:          map[string]map[string]any{"t1": {"lr": 0.1, "loss": 0.4}, "t2": {"lr": 0.01, "loss": 0.2}},
					Hyperparameters: []string{"lr"}, Metrics: []string{"loss"}, BestTrial: "t2",
				})
				sc.LogLocalized(synapse.Localized{"en": "Evaluation done", "ko": "평가 완료"}, synapse.LevelSuccess)
				sc.Dangerf("accuracy below %d%%", 90)
				sc.Criticalf("critical %s", "check")
				return steps.Succeeded(nil)
			}, steps.WithProportion(10)),
		)
		if _, err := steps.NewOrchestrator(reg).Run(ctx); err != nil {
			return ContextResult{}, err
		}
		ctx.SetProgress(1, 4, "optional")
		ctx.SetProgressFailed("optional")
		return ContextResult{Progress: ctx.Progress(), Language: ctx.Language()}, nil
	})
}

// PluginDir returns the directory of a plugin (config.yaml and a main
// package calling plugin.Main(Actions()...)) that serves Actions, for the
// executors that run a plugin directory. Its config.yaml sets env LAYER to
// "config" and FROM_CONFIG to "yes".
func PluginDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "plugin")
}
