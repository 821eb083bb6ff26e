// Package retry is the one backoff the SDK's retry loops share (the Ray
// job poll and log tail, the Serve deploy wait, task-mode calls): an
// exponential delay from a first to a largest interval, waited out under a
// context. The arithmetic is github.com/cenkalti/backoff/v5's.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff is the delay between attempts of one retry loop. It is not safe
// for concurrent use.
type Backoff struct {
	b backoff.ExponentialBackOff
}

// New returns a Backoff whose first delay is first, each next one factor
// times the last, at most max. Delays are not randomised: the loops that
// use it retry one server each.
func New(first, max time.Duration, factor float64) *Backoff {
	b := &Backoff{b: backoff.ExponentialBackOff{InitialInterval: first, Multiplier: factor, MaxInterval: max}}
	b.b.Reset()
	return b
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts again from the first delay (after a success).
func (b *Backoff) Reset() { b.b.Reset() }

// Wait sleeps for the next delay, or until ctx is done (returning its
// error).
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }

// Sleep waits for d, or until ctx is done (returning its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
