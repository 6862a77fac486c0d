package maildir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// FolderState implements sink.FolderStater: the device and inode of the
// folder's directory, cur/ and new/ are its identity (a folder removed and
// made again, or a backup restored from elsewhere, has new ones); the
// mtimes of cur/ and new/ change whenever a file is added, removed or
// renamed, and their entry counts whenever one is added or removed, which
// also covers a change within the same timestamp tick as the last write
// (coarse file system clocks). One readdir of names each: no file is
// opened or stat'ed.
func (s *Sink) FolderState(ctx context.Context, folder string) (sink.FolderState, error) {
	st := sink.FolderState{Messages: -1, Next: -1}
	dir, err := s.Dir(folder)
	if err != nil {
		return st, err
	}
	id, stamp := "maildir", ""
	for _, sub := range []string{"", "cur", "new"} {
		p := filepath.Join(dir, sub)
		fi, err := os.Lstat(p)
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
		n, err := entries(p)
		if err != nil {
			return st, fmt.Errorf("folder %q: %w", folder, err)
		}
		stamp += fmt.Sprintf(" %s=%d/%d", sub, fi.ModTime().UnixNano(), n)
	}
	st.Identity, st.Stamp = id, stamp
	return st, nil
}

func entries(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
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
