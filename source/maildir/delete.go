package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mailferry/mailferry/internal/atomicfile"
	"github.com/mailferry/mailferry/source"
)

// Delete implements source.Deleter (a move): each message's file is
// removed, then its directory is synced, so the deletion is as durable as
// the copy it follows. A message already gone is not an error: deleting
// is what was asked.
func (s *Store) Delete(ctx context.Context, msgs []source.Message) error {
	dirs := map[string]bool{}
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := s.Path(m.Folder, m.ID)
		if errors.Is(err, source.ErrMessageNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %q from folder %q: %w", m.ID, m.Folder, err)
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := atomicfile.SyncDir(d); err != nil {
			return fmt.Errorf("sync %s: %w", d, err)
		}
	}
	return nil
}

var _ source.Deleter = (*Store)(nil)
