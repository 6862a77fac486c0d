package maildir

import (
	"io/fs"
	"syscall"
	"time"
)

// changeTime is fi's ctime, which no one can set back.
func changeTime(fi fs.FileInfo) (time.Time, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(st.Ctim.Unix()), true
}
