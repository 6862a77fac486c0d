//go:build !unix

package mbox

import (
	"fmt"
	"io/fs"
	"os"
)

// openNoFollow opens (or makes, 0600) an mbox file for appending; without
// O_NOFOLLOW, a symbolic link is refused by a look first.
func openNoFollow(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%q is a symbolic link, which is not followed", path)
	}
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// fileID has no inode to offer here: size and mtime (the Stamp) show a
// change.
func fileID(fs.FileInfo) string { return "?" }
