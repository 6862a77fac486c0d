package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// FolderState implements sink.FolderStater with three stats: the device
// and inode of the folder's directory, cur/ and new/ are its identity (a
// folder removed and made again, or a backup restored from elsewhere, has
// new ones), and the mtimes of cur/ and new/ change whenever a file is
// added, removed or renamed. A directory changed within the last second
// may change again within the same clock tick unseen (coarse file system
// timestamps), so then there is no Stamp and the next run lists.
func (s *Sink) FolderState(ctx context.Context, folder string) (sink.FolderState, error) {
	st := sink.FolderState{Messages: -1, Next: -1}
	dir, err := s.Dir(folder)
	if err != nil {
		return st, err
	}
	id, stamp := "maildir", ""
	for _, sub := range []string{"", "cur", "new"} {
		fi, err := os.Lstat(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			return st, nil // not there: no identity
		}
		if err != nil {
			return st, fmt.Errorf("folder %q: %w", folder, err)
		}
		if !fi.IsDir() {
			return st, nil
		}
		id += " " + sub + "=" + fileID(fi)
		if sub == "" {
			continue
		}
		if time.Since(fi.ModTime()) < time.Second {
			stamp = "-"
		}
		if stamp != "-" {
			stamp += fmt.Sprintf(" %s=%d", sub, fi.ModTime().UnixNano())
		}
	}
	st.Identity = id
	if stamp != "-" {
		st.Stamp = stamp
	}
	return st, nil
}

var _ sink.FolderStater = (*Sink)(nil)

// Folders implements source.Source for a destination: a tree removed since
// it was opened holds no folders yet (Put makes it again).
func (s *Sink) Folders(ctx context.Context) ([]source.Folder, error) {
	if _, err := os.Lstat(s.Root()); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return s.Store.Folders(ctx)
}
