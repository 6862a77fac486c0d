package sourcetest

import (
	"context"
	"testing"
	"time"

	"github.com/mailferry/mailferry/source"
)

// StartWatch runs w.Watch for a watcher's test. Its calls of changed
// arrive on changed; ended gets what Watch returned if it ends on its
// own; stop ends the watch and fails the test unless Watch returns nil
// within 2 s. The test calls stop.
func StartWatch(t testing.TB, w source.Watcher) (changed <-chan struct{}, ended <-chan error, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, func() { ch <- struct{}{} }) }()
	stop = func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch ended with %v, want nil", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Watch did not end with its context")
		}
	}
	return ch, done, stop
}
