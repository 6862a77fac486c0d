package pool

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestStartHandsEachValueOnceAndWaits(t *testing.T) {
	for _, tc := range []struct{ workers, buffer, values int }{{1, 0, 10}, {4, 0, 100}, {3, 3, 1000}, {8, 1, 0}} {
		var mu sync.Mutex
		seen := map[int]int{}
		var running, most atomic.Int32
		in, done := Start(tc.workers, tc.buffer, func(v int) {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			mu.Lock()
			seen[v]++
			mu.Unlock()
			running.Add(-1)
		})
		for i := range tc.values {
			in <- i
		}
		done()
		if len(seen) != tc.values {
			t.Fatalf("%+v: %d values handled, want %d", tc, len(seen), tc.values)
		}
		for v, n := range seen {
			if n != 1 {
				t.Errorf("%+v: value %d handled %d times", tc, v, n)
			}
		}
		if int(most.Load()) > tc.workers {
			t.Errorf("%+v: %d ran at once, more than %d workers", tc, most.Load(), tc.workers)
		}
		if running.Load() != 0 {
			t.Errorf("%+v: done returned with %d still running", tc, running.Load())
		}
	}
}
