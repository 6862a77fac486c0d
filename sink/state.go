package sink

import "context"

// FolderState is what a destination folder shows of itself cheaply (one
// STATUS, a stat or two), recorded with the checkpoint after a run's writes
// so that the next run can tell whether the messages the checkpoint says
// are there can still be there, without listing the folder.
type FolderState struct {
	// Identity names this incarnation of the folder; it changes when the
	// folder is deleted and made again (IMAP: UIDVALIDITY; Maildir: device
	// and inode of its directories). "" means the folder does not exist.
	Identity string `json:"identity"`
	// Messages and Next are IMAP's MESSAGES and UIDNEXT; -1 when unknown.
	Messages int64 `json:"messages"`
	Next     int64 `json:"next"`
	// Stamp changes whenever a message is added or removed (Maildir: the
	// directories' mtimes); "" when the store has none it can vouch for.
	Stamp string `json:"stamp,omitempty"`
}

// Kept reports whether every message the folder held in state old can
// still be there in state now: the same folder, and nothing removed since.
//
// With IMAP counts this holds when MESSAGES grew by exactly as much as
// UIDNEXT: a UID is never reused, so n messages appended raise UIDNEXT by
// at least n, and any expunge makes MESSAGES fall behind. A folder that
// receives its own mail (a new server in use during a migration) is
// therefore still trusted without a listing, while one message deleted
// is enough to distrust it.
func (old FolderState) Kept(now FolderState) bool {
	if old.Identity == "" || old.Identity != now.Identity {
		return false
	}
	if old.Stamp != "" && old.Stamp == now.Stamp {
		return true
	}
	if old.Messages < 0 || old.Next < 0 || now.Messages < 0 || now.Next < 0 {
		return false
	}
	added := now.Next - old.Next
	return added >= 0 && now.Messages-old.Messages == added
}

// FolderStater is implemented by sinks that can report a folder's
// FolderState. The planner checks it before it believes the checkpoint;
// a sink without it has its folders listed on every run.
type FolderStater interface {
	// FolderState returns the folder's state; a missing folder is the
	// zero Identity, not an error.
	FolderState(ctx context.Context, folder string) (FolderState, error)
}
