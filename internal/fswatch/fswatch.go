// Package fswatch tells a local store's watcher (source.Watcher) of
// changes to its files, through the kernel's file notifications
// (fsnotify, the field's library: inotify, kqueue and friends behind one
// API).
package fswatch

import (
	"context"
	"fmt"

	"github.com/fsnotify/fsnotify"

	"github.com/mailferry/mailferry/source"
)

// Watch calls changed once the directories are watched (what changed
// before went unseen), then for every file created, written, renamed or removed
// in the directories must and may whose name keep accepts (nil: every
// one), until ctx ends (nil). A directory of must that cannot be watched
// is an error; one of may the kernel will not watch (too many watches) is
// left to the watch's passes. When events were lost (the kernel's queue
// overflowed) it calls changed, since a pass finds what they said, and
// returns the error, so the caller starts afresh. store names the store
// in errors.
func Watch(ctx context.Context, store string, must, may []string, keep func(name string) bool, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%w: %v", source.ErrCannotWatch, err)
	}
	defer w.Close()
	for _, d := range must {
		if err := w.Add(d); err != nil {
			return fmt.Errorf("watch %s: %w", store, err)
		}
	}
	for _, d := range may {
		_ = w.Add(d)
	}
	changed() // watching now: what came before was not seen
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if keep != nil && !keep(ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
				changed()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			changed()
			return fmt.Errorf("watch %s: %w", store, err)
		}
	}
}
