//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package maildir

import (
	"io/fs"
	"time"
)

// changeTime is unknown here: a stale file in tmp/ is left, never a
// delivery in flight removed.
func changeTime(fs.FileInfo) (time.Time, bool) { return time.Time{}, false }
