package worker

import (
	"context"
	"errors"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// The cause of an execution error survives the trip as a sentinel.
func TestFromErrorCause(t *testing.T) {
	tests := []struct {
		cause string
		want  error
	}{
		{"canceled", context.Canceled},
		{"deadline_exceeded", context.DeadlineExceeded},
		{CauseWorkerExited, ErrWorkerLost},
	}
	for _, tt := range tests {
		err := FromError(&protocol.Error{Kind: protocol.KindExecution, Message: "m", Action: "a", Cause: tt.cause})
		if !errors.Is(err, tt.want) || !errors.Is(err, synapse.ErrExecution) || err.Error() == "" {
			t.Errorf("cause %q: %v, want it to match %v", tt.cause, err, tt.want)
		}
	}
	if err := FromError(&protocol.Error{Kind: protocol.KindExecution, Message: "m"}); errors.Is(err, ErrWorkerLost) || errors.Is(err, context.Canceled) {
		t.Errorf("no cause: %v matches a cause", err)
	}
}
