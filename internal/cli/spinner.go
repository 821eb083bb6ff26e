package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// spinDelay is how long work may take before the spinner appears, so that
// fast (cached) work shows nothing.
const spinDelay = 250 * time.Millisecond

// spin shows message with a spinner on w (a terminal) until the returned
// function is called.
func spin(w io.Writer, message string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			return
		case <-time.After(spinDelay):
		}
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r%c %s", frames[i%len(frames)], message)
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
