//go:build !unix

package maildir

import (
	"fmt"
	"io/fs"
	"os"
)

// openNoFollow opens a message file for reading, refusing a symbolic link
// in its place (checked just before: no O_NOFOLLOW here).
func openNoFollow(p string) (*os.File, error) {
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%w: %s", ErrSymlink, p)
	}
	return os.Open(p)
}
