//go:build unix

package maildir

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileID names the file fi describes: its device and inode.
func fileID(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return "?"
}
