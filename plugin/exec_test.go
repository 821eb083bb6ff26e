package plugin_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

// TestRunPluginDirectory builds the example plugin and runs it in a child
// process over the worker protocol.
func TestRunPluginDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary; skipped with -short")
	}
	t.Setenv("SYNAPSE_CACHE_DIR", t.TempDir())
	dir := filepath.Join("..", "examples", "train")
	rec := plugintest.NewRecorder()
	env := synapse.NewEnv(map[string]any{"DATASET_DIR": "/explicit"})
	got, err := synapse.RunPlugin(context.Background(), dir, "train", map[string]any{"epochs": 3},
		synapse.WithLogger(rec), synapse.WithEnv(env), synapse.WithJobID("job-5"))
	if err != nil {
		t.Fatalf("RunPlugin: %v", err)
	}
	res := got.(map[string]any)
	if res["epochs"] != 3.0 || res["dataset"] != "/explicit" {
		t.Errorf("result = %v", res)
	}
	if p, ok := rec.LastPercent("train"); !ok || p != 100 {
		t.Errorf("forwarded progress ended at %v (%v)", p, ok)
	}
	if logs := rec.Logs("epoch_complete"); len(logs) != 3 || logs[0].JobID != "job-5" {
		t.Errorf("forwarded logs = %+v", logs)
	}
	if m := rec.Metrics("training"); m["final_loss"] == nil {
		t.Errorf("forwarded metrics = %v", m)
	}

	// Typed errors are rebuilt on this side.
	_, err = synapse.RunPlugin(context.Background(), dir, "train", map[string]any{"epochs": 0}, synapse.WithLogger(rec))
	var ve *synapse.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].String() != "epochs: must be >= 1 (got 0)" {
		t.Errorf("validation error = %v", err)
	}
	_, err = synapse.RunPlugin(context.Background(), dir, "train", map[string]any{"epochs": 2, "fail_at_epoch": 2}, synapse.WithLogger(rec))
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || xe.Action != "train" || !strings.Contains(err.Error(), "epoch 2: loss diverged") {
		t.Errorf("execution error = %v", err)
	}
	_, err = synapse.RunPlugin(context.Background(), dir, "trian", nil, synapse.WithLogger(rec))
	if !errors.Is(err, synapse.ErrActionNotFound) {
		t.Errorf("unknown action = %v", err)
	}

	// Cancelling the caller's context cancels the action in the child.
	ctx, cancel := context.WithCancel(context.Background())
	logger := synapse.LoggerFunc(func(e synapse.Event) {
		if e.Type == synapse.EventProgress && e.Current > 0 { // progress is throttled: the first after 0 is at 1%
			cancel()
		}
	})
	_, err = synapse.RunPlugin(ctx, dir, "train", map[string]any{"epochs": 1000, "delay_ms": 5}, synapse.WithLogger(logger))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, synapse.ErrExecution) {
		t.Errorf("cancelled run = %v", err)
	}
}

// TestRunPluginStdoutNoise: an action printing to stdout in a child worker
// neither breaks the run nor hides cancellation.
func TestRunPluginStdoutNoise(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary; skipped with -short")
	}
	t.Setenv("SYNAPSE_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	sdk, _ := filepath.Abs("..")
	files := map[string]string{
		"config.yaml": "name: Noisy\ncode: noisy\n",
		"go.mod":      "module example.com/noisy\n\ngo 1.26\n\nrequire github.com/synapse-sdk/synapse-go v0.0.0-00010101000000-000000000000\n\nreplace github.com/synapse-sdk/synapse-go => " + sdk + "\n",
		"main.go": `package main

import (
	"fmt"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
)

var loud = synapse.NewAction("loud", func(ctx *synapse.Context, p struct{ Wait bool ` + "`json:\"wait\"`" + ` }) (string, error) {
	fmt.Println("debug: starting")
	if p.Wait {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Minute):
		}
	}
	return "done", nil
})

func main() { plugin.Main(loud) }
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	rec := plugintest.NewRecorder()
	got, err := synapse.RunPlugin(context.Background(), dir, "loud", nil, synapse.WithLogger(rec))
	if err != nil || got != "done" {
		t.Fatalf("RunPlugin = %v, %v", got, err)
	}
	if msgs := rec.Messages(); len(msgs) != 1 || msgs[0] != "debug: starting" {
		t.Errorf("stdout lines forwarded as %v", msgs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err = synapse.RunPlugin(ctx, dir, "loud", map[string]any{"wait": true}, synapse.WithLogger(rec))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 20*time.Second {
		t.Errorf("cancelled noisy run: %v after %v", err, time.Since(start))
	}
}

// TestConformance runs the executor suite against the plugin directory's
// child-process executor.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin binary; skipped with -short")
	}
	t.Setenv("SYNAPSE_CACHE_DIR", t.TempDir())
	p, err := plugin.Load(executortest.PluginDir())
	if err != nil {
		t.Fatal(err)
	}
	executortest.Run(t, func(t *testing.T, opts ...synapse.Option) synapse.Executor {
		return plugin.NewExecutor(p, opts...)
	})
}
