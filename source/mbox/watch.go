package mbox

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mailferry/mailferry/internal/fswatch"
	"github.com/mailferry/mailferry/source"
)

// Watch implements source.Watcher with file notifications
// (internal/fswatch, as for Maildir): a message appended to any mbox file
// of the tree, a file rewritten (Thunderbird compacting), added or removed
// calls changed. A single file is watched through its directory, for the
// writers that replace it by renaming a new one over it. Directories made
// after the watch began are watched from the next Watch; the pass that a
// new file starts reads them.
func (s *Store) Watch(ctx context.Context, changed func()) error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	if !fi.IsDir() {
		file := filepath.Clean(s.root)
		// Another file beside the one read is not this store's.
		keep := func(name string) bool { return filepath.Clean(name) == file }
		return fswatch.Watch(ctx, s.root, []string{filepath.Dir(file)}, nil, keep, changed)
	}
	var dirs []string
	err = filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return fswatch.Watch(ctx, s.root, nil, dirs, nil, changed)
}

var _ source.Watcher = (*Store)(nil)
