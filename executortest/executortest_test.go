package executortest_test

import (
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/executortest"
)

// TestInProcess runs the suite against the in-process executor.
func TestInProcess(t *testing.T) {
	executortest.Run(t, func(t *testing.T, opts ...synapse.Option) synapse.Executor {
		set, err := synapse.NewActionSet(executortest.Actions(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return set
	})
}
