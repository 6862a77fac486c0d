// Package pool hands values to a fixed number of goroutines: folders and
// messages in the planner, jobs in a batch.
package pool

import "sync"

// Start starts n goroutines that call fn for each value sent on
// in, a channel of the given buffer; done closes in and waits for them.
func Start[T any](n, buffer int, fn func(T)) (in chan<- T, done func()) {
	ch := make(chan T, buffer)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range ch {
				fn(v)
			}
		}()
	}
	return ch, func() {
		close(ch)
		wg.Wait()
	}
}
