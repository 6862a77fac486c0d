package mbox

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	"github.com/mailferry/mailferry/source"
)

// Watch implements source.Watcher with file notifications (fsnotify, as
// for Maildir): a message appended to any mbox file of the tree, a file
// rewritten (Thunderbird compacting), added or removed calls changed. A
// single file is watched through its directory, for the writers that
// replace it by renaming a new one over it. Directories made after the
// watch began are watched from the next Watch; the pass that a new file
// starts reads them.
func (s *Store) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%w: %v", source.ErrCannotWatch, err)
	}
	defer w.Close()
	fi, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	file := ""
	if !fi.IsDir() {
		file = filepath.Clean(s.root)
		if err := w.Add(filepath.Dir(file)); err != nil {
			return fmt.Errorf("watch %s: %w", s.root, err)
		}
	} else {
		err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
				_ = w.Add(p) // one the kernel will not watch is left to the passes
			}
			return nil
		})
		if err != nil {
			return err
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
			if file != "" && filepath.Clean(ev.Name) != file {
				continue // another file beside the one read
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
				changed()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			changed() // events were lost: a pass finds what they said
			return fmt.Errorf("watch %s: %w", s.root, err)
		}
	}
}

var _ source.Watcher = (*Store)(nil)
