package remote_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/remote"
)

// Publish a plugin directory to a backend (`synapse server` here), then run
// one of its actions there and print the result.
func Example() {
	ctx := context.Background()
	b := remote.Backend{Host: "http://127.0.0.1:8080", Token: os.Getenv("SYNAPSE_ACCESS_TOKEN")}
	p, err := plugin.Load("./my-plugin")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := remote.Publish(ctx, p, remote.PublishOptions{Backend: b}); err != nil && !errors.Is(err, remote.ErrVersionExists) {
		log.Fatal(err)
	}
	res, err := synapse.RunPlugin(ctx, "./my-plugin", "train", map[string]any{"epochs": 3},
		synapse.WithMode(synapse.ModeRemote),
		synapse.WithModeOptions(remote.Options{Backend: b}))
	var ve *synapse.ValidationError
	if errors.As(err, &ve) {
		log.Fatal(err) // checked on this machine: nothing was sent
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res)
}

// Submit a run that outlives the program: print its ID, follow its events
// until Ctrl-C (the job keeps running), and print its result.
func ExampleExecutor_SubmitJob() {
	ctx := context.Background()
	p, err := plugin.Load("./my-plugin")
	if err != nil {
		log.Fatal(err)
	}
	e, err := remote.NewExecutor(p, remote.Options{Backend: remote.BackendFromEnv(), Agent: 1})
	if err != nil {
		log.Fatal(err)
	}
	job, err := e.SubmitJob(ctx, "train", map[string]any{"epochs": 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("job", job.ID(), "at", job.DashboardURL())
	if err := job.Follow(ctx, synapse.NewConsoleLogger(os.Stderr)); err != nil {
		log.Fatal(err)
	}
	res, err := job.Result(ctx)
	if err != nil {
		log.Fatal(err) // errors.Is(err, synapse.ErrJobStopped) for a stopped job
	}
	fmt.Println(res)
}

// List the running jobs of a backend and stop them.
func ExampleListJobs() {
	ctx := context.Background()
	b := remote.BackendFromEnv()
	jobs, err := remote.ListJobs(ctx, b, remote.JobFilter{Status: synapse.JobRunning})
	if err != nil {
		log.Fatal(err)
	}
	for _, info := range jobs {
		job, err := remote.OpenJob(ctx, b, info.ID)
		if err != nil {
			log.Fatal(err)
		}
		if err := job.Stop(ctx); err != nil {
			log.Fatal(err)
		}
		fmt.Println("stopped", info.ID, info.Plugin+"@"+info.Release, info.Action)
	}
}

// List what `synapse plugin publish --dry-run` would upload: no network.
func ExamplePack() {
	p, err := plugin.Load("./my-plugin")
	if err != nil {
		log.Fatal(err)
	}
	pkg, err := remote.Pack(context.Background(), p, "amd64")
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range pkg.Files {
		fmt.Println(f.Name, f.Size)
	}
	fmt.Println(pkg.Plugin+"@"+pkg.Version, pkg.Size, "bytes")
}
