package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := New(200*time.Millisecond, 2*time.Second, 2)
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next())
	}
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second, 2 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != 200*time.Millisecond {
		t.Errorf("after Reset: %v", d)
	}
	slow := New(100*time.Millisecond, time.Second, 1.5)
	if a, c := slow.Next(), slow.Next(); a != 100*time.Millisecond || c != 150*time.Millisecond {
		t.Errorf("factor 1.5: %v, %v", a, c)
	}
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if err := New(time.Hour, time.Hour, 2).Wait(ctx); !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Errorf("Wait on a cancelled context = %v after %v", err, time.Since(start))
	}
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
}
