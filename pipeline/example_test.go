package pipeline_test

import (
	"context"
	"fmt"
	"os"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/pipeline"
)

type exFetchParams struct {
	URL string `json:"url" validate:"required"`
}

type exFetchResult struct {
	DatasetPath string `json:"dataset_path"`
}

type exFitParams struct {
	DatasetPath string `json:"dataset_path" validate:"required"`
	Epochs      int    `json:"epochs" default:"10"`
}

type exFitResult struct {
	Model string `json:"model"`
}

func Example() {
	fetch := synapse.NewAction("fetch", func(ctx *synapse.Context, p exFetchParams) (exFetchResult, error) {
		dirs, _ := pipeline.WorkDir(ctx) // the run's directories: datasets, models, …
		_ = dirs.Datasets
		return exFetchResult{DatasetPath: "datasets/cats"}, nil
	})
	fit := synapse.NewAction("fit", func(ctx *synapse.Context, p exFitParams) (exFitResult, error) {
		return exFitResult{Model: fmt.Sprintf("%s@%d", p.DatasetPath, p.Epochs)}, nil
	})

	workDir, err := os.MkdirTemp("", "pipelines")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(workDir)

	p, err := pipeline.New("train", []synapse.Action{fetch, fit}, pipeline.Strict(), pipeline.WithWorkDir(workDir))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("missing without params:", p.Check(nil))

	// url goes to fetch; epochs to fit; dataset_path flows from fetch to fit.
	run, err := p.Run(context.Background(), map[string]any{"url": "https://example.com/cats", "epochs": 3},
		synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		fmt.Println(err)
		fmt.Println("resume with:", run.ID)
		return
	}
	fmt.Printf("%+v\n", run.Result)
	// Output:
	// missing without params: [fetch.url]
	// {Model:datasets/cats@3}
}
