package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrSymlink is wrapped when a folder's directory, or its cur/, new/ or
// tmp/, is a symbolic link: a tree never leads a read, nor a write,
// outside itself (a privileged job importing an uploaded tree would
// otherwise copy whatever the link points at).
var ErrSymlink = errors.New("symbolic link inside the maildir not followed")

// CheckNoLinks refuses dir, and its cur/, new/ and tmp/, when any is a
// symbolic link; the tree's root itself may be one (a backup directory
// on another disk), so dir is checked only below root. Missing parts
// are not an error.
func CheckNoLinks(root, dir string) error {
	parts := []string{"cur", "new", "tmp"}
	if filepath.Clean(dir) != filepath.Clean(root) {
		parts = append([]string{""}, parts...)
	}
	for _, sub := range parts {
		p := filepath.Join(dir, sub)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s", ErrSymlink, p)
		}
	}
	return nil
}
