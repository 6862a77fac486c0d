package maildir

import (
	"context"
	"path/filepath"

	"github.com/mailferry/mailferry/internal/fswatch"
	"github.com/mailferry/mailferry/source"
)

// Watch implements source.Watcher with the kernel's file notifications
// (internal/fswatch): a message delivered, renamed by a flag change or
// removed in any folder's cur/ or new/, and a folder made at the top of
// the tree, call changed. A folder made after the watch began is watched
// from the next Watch; the pass it starts copies it. The passes at the
// interval stay the safety net for what notifications miss (a network
// file system, a full event queue).
func (s *Store) Watch(ctx context.Context, changed func()) error {
	folders, err := s.Folders(ctx)
	if err != nil {
		return err
	}
	var dirs []string
	for _, f := range folders {
		dir, err := s.Dir(f.Name)
		if err != nil {
			continue
		}
		dirs = append(dirs, filepath.Join(dir, "cur"), filepath.Join(dir, "new"))
	}
	return fswatch.Watch(ctx, s.root, []string{s.root}, dirs, nil, changed)
}

var _ source.Watcher = (*Store)(nil)
