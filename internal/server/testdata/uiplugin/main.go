// Command uiplugin is the plugin the dashboard's browser test
// (../../ui_browser_integration_test.go) publishes and runs:
//
//	train   epochs epochs of delay_ms each: progress of step "train", a
//	        metric point train/loss and train/accuracy and a console line
//	        per epoch, SetMetrics snapshots, then step "evaluate" with a
//	        visualization and trials
//	wait    prints a line every 200 ms until stopped
//	xss     logs and prints HTML with a script, and returns it
//	lines   prints n lines at once
//	fail    fails with an error holding HTML
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
)

// TrainParams are the params of "train".
type TrainParams struct {
	Epochs  int `json:"epochs" default:"8" validate:"min=1"`
	DelayMS int `json:"delay_ms" default:"400" validate:"min=0"`
}

// LinesParams are the params of "lines".
type LinesParams struct {
	N int `json:"n" default:"10000" validate:"min=1"`
}

// XSS is what the "xss" action logs, prints and returns.
const XSS = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`

// predictions is a 32×32 gradient, as PNG.
func predictions() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 8), 160, 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

func main() {
	plugin.Main(
		synapse.NewAction("train", train),
		synapse.NewAction("wait", func(ctx *synapse.Context, _ struct{}) (map[string]int, error) {
			for i := 0; ; i++ {
				fmt.Printf("waiting %d\n", i)
				ctx.SetProgress(i%100, 100, "wait")
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
		}),
		synapse.NewAction("xss", func(ctx *synapse.Context, _ struct{}) (map[string]string, error) {
			ctx.Infof("%s", XSS)
			fmt.Println(XSS)
			ctx.SetProgress(1, 1, XSS)
			ctx.SetMetrics(map[string]any{XSS: XSS}, "xss")
			ctx.LogMetric("xss", XSS, 1, nil)
			return map[string]string{"html": XSS}, nil
		}),
		synapse.NewAction("fail", func(ctx *synapse.Context, _ struct{}) (map[string]int, error) {
			ctx.SetProgress(1, 4, "train")
			return nil, fmt.Errorf("the data set is broken: %s", XSS)
		}),
		synapse.NewAction("lines", func(ctx *synapse.Context, p LinesParams) (map[string]int, error) {
			for i := 1; i <= p.N; i++ {
				fmt.Printf("line %d of %d\n", i, p.N)
			}
			return map[string]int{"lines": p.N}, nil
		}),
	)
}

func train(ctx *synapse.Context, p TrainParams) (map[string]any, error) {
	loss := 0.0
	for e := 1; e <= p.Epochs; e++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(p.DelayMS) * time.Millisecond):
		}
		loss = 2 * math.Exp(-0.4*float64(e))
		ctx.LogMetric("train", "loss", loss, map[string]any{"epoch": e})
		ctx.LogMetric("train", "accuracy", 1-loss/2, map[string]any{"epoch": e})
		ctx.SetMetrics(map[string]any{"epoch": e, "loss": math.Round(loss*1000) / 1000}, "train")
		ctx.Infof("epoch %d/%d loss %.3f", e, p.Epochs, loss)
		if e == p.Epochs/2 {
			ctx.LogMessage("halfway there", synapse.LevelWarning)
		}
		fmt.Printf("epoch %d/%d: loss=%.4f\n", e, p.Epochs, loss)
		ctx.SetProgress(e, p.Epochs, "train")
	}
	ctx.SetProgress(0, 2, "evaluate")
	if err := ctx.LogVisualization("val", "predictions", 0, synapse.File{Data: predictions(), Name: "pred-0.png"}, map[string]any{"iou": 0.75}); err != nil {
		return nil, err
	}
	ctx.LogTrials(synapse.Trials{
		Trials:          map[string]map[string]any{"t1": {"lr": 0.1, "loss": 0.4}, "t2": {"lr": 0.01, "loss": 0.2}, "t3": {"lr": 0.001, "loss": 0.3}},
		Hyperparameters: []string{"lr"}, Metrics: []string{"loss"}, BestTrial: "t2",
	})
	ctx.SetProgress(2, 2, "evaluate")
	return map[string]any{"epochs": p.Epochs, "final_loss": loss}, nil
}
