//go:build unix

package mbox

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow opens (or makes, 0600) an mbox file for appending, never
// through a symbolic link.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
}

// fileID names the file fi describes: its device and inode.
func fileID(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return "?"
}
