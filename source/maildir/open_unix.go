//go:build unix

package maildir

import (
	"os"
	"syscall"
)

// openNoFollow opens a message file for reading, refusing a symbolic link
// in its place (one swapped in after the listing saw a regular file).
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
