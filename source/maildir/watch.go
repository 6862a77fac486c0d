package maildir

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	"github.com/mailferry/mailferry/source"
)

// Watch implements source.Watcher with the kernel's file notifications
// (inotify on Linux, through fsnotify, the field's library): a message
// delivered, renamed by a flag change or removed in any folder's cur/ or
// new/, and a folder made at the top of the tree, call changed. A folder
// made after the watch began is watched from the next Watch; the pass it
// starts copies it. The passes at the interval stay the safety net for
// what notifications miss (a network file system, a full event queue).
func (s *Store) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%w: %v", source.ErrCannotWatch, err)
	}
	defer w.Close()
	folders, err := s.Folders(ctx)
	if err != nil {
		return err
	}
	if err := w.Add(s.root); err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	for _, f := range folders {
		dir, err := s.Dir(f.Name)
		if err != nil {
			continue
		}
		for _, sub := range []string{"cur", "new"} {
			// A folder the kernel will not watch (too many watches) is
			// left to the passes.
			_ = w.Add(filepath.Join(dir, sub))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Write) {
				changed()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// Events were lost (the queue overflowed): a pass finds what
			// they said, and the watch starts afresh.
			changed()
			return fmt.Errorf("watch %s: %w", s.root, err)
		}
	}
}

var _ source.Watcher = (*Store)(nil)
