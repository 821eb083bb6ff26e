package store

import "sync"

// watchers are the in-process subscribers to changes of jobs (WatchJob),
// by job ID. The zero value is ready.
type watchers struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// WatchJob subscribes to the changes this Store makes to the job: lines
// appended to its console log (AppendConsole, AppendConsoleAt), the log
// closed (CloseConsole), and its record updated (UpdateJob, ReportJob,
// SettleJob). After each change, once it is committed, changed holds a
// value (one at most: changes made while nobody reads it coalesce), so a
// reader that subscribes before it reads the job misses none. stop ends
// the subscription; call it once done (it may be called more than once).
//
// Only changes made through this Store value are seen, not those of
// another process sharing the database: one synapse server uses a
// database at a time (Lock).
func (s *Store) WatchJob(jobID string) (changed <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	w := &s.watch
	w.mu.Lock()
	if w.subs == nil {
		w.subs = map[string]map[chan struct{}]struct{}{}
	}
	if w.subs[jobID] == nil {
		w.subs[jobID] = map[chan struct{}]struct{}{}
	}
	w.subs[jobID][ch] = struct{}{}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			delete(w.subs[jobID], ch)
			if len(w.subs[jobID]) == 0 {
				delete(w.subs, jobID)
			}
		})
	}
}

// notify tells the job's subscribers (WatchJob) that it changed.
func (s *Store) notify(jobID string) {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[jobID] {
		select {
		case ch <- struct{}{}:
		default: // one pending already
		}
	}
}

// watching is how many jobs have subscribers (for tests).
func (s *Store) watching() int {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	return len(s.watch.subs)
}
