package backend_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/synapse-sdk/synapse-go/internal/backend"
)

// Run an action on a backend's first agent and follow its console log to
// the job's end.
func Example() {
	ctx := context.Background()
	c, err := backend.New("http://127.0.0.1:8080", "syn_…", backend.WithUserAgent(backend.UserAgent("v1.2.3")))
	if err != nil {
		log.Fatal(err)
	}
	agents, err := c.Agents(ctx)
	if err != nil {
		log.Fatal(err) // errors.Is(err, backend.ErrUnauthorized): run `synapse login`
	}
	job, err := c.Run(ctx, "my-plugin", backend.RunRequest{Agent: agents[0].ID, Action: "train", Params: []byte(`{"epochs": 5}`)})
	var uncertain *backend.UncertainError
	if errors.As(err, &uncertain) {
		log.Fatal(err) // the job may exist: never run it again blindly
	} else if err != nil {
		log.Fatal(err)
	}
	err = c.TailConsole(ctx, job.ID, 0, func(l backend.Line) error {
		fmt.Println(l.Text)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	job, err = c.Job(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Status, string(job.Result))
}

func ExampleMask() {
	fmt.Println(backend.Mask("syn_0123456789abcdef0123456789abcdef01234567"))
	// Output: syn_****4567
}
