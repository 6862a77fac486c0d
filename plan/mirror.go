package plan

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
)

// ErrCannotMirror: --mirror-deletes with a destination that cannot delete.
var ErrCannotMirror = errors.New("this destination cannot delete messages (--mirror-deletes)")

// mirror deletes from the destination the copies of the messages of a
// source folder that the checkpoint recorded and the source no longer
// has. It is guarded, because a wrong listing must never empty a backup:
//   - it needs a checkpoint from an earlier run (without one, nothing is
//     known to be gone);
//   - it refuses a folder whose IDs all changed epoch (IMAP UIDVALIDITY,
//     the part of "UIDVALIDITY/UID" before the slash): every old ID looks
//     gone, though the mail is still there;
//   - it refuses to delete more than MaxDeleteFraction of a folder's
//     recorded messages in one run, unless ForceDeletes;
//   - it deletes only destination messages the checkpoint ties to the
//     gone message (copied, or matched to it), and none that another,
//     present source message still names (a duplicate).
//
// A refusal is a folder error (exit code 3); the folder is still copied.
func (e *engine) mirror(ctx context.Context, fs *FolderSummary, listed []source.Message) error {
	if _, last := e.ckpt.PreviousRun(); last.IsZero() {
		e.opt.Log.Warn("mirror: no earlier run in the checkpoint, so nothing is known to be gone; nothing deleted", "folder", fs.Name)
		return nil
	}
	present := make(map[string]bool, len(listed))
	epochs := map[string]bool{}
	for _, m := range listed {
		present[m.ID] = true
		epochs[epoch(m.ID)] = true
	}
	type gone struct {
		id  string
		rec state.Record
	}
	var goneList []gone
	kept := map[string]bool{} // destination folder + ID still named by a present message
	recorded := 0
	rf, err := e.ckpt.ReadFolder(fs.Name)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	err = rf.Each(func(id string, rec state.Record) error {
		recorded++
		if present[id] {
			kept[rec.DstFolder+"\x00"+rec.DstID] = true
		} else {
			goneList = append(goneList, gone{id, rec})
		}
		return nil
	})
	rf.Close()
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if len(goneList) == 0 {
		return nil
	}
	refuse := func(why string) error {
		msg := "mirror: nothing deleted: " + why
		e.mu.Lock()
		fs.Error = msg
		e.sum.Errors = append(e.sum.Errors, ErrorEntry{Folder: fs.Name, Error: msg})
		e.mu.Unlock()
		e.opt.Log.Error("mirror refused", "folder", fs.Name, "reason", why)
		return nil
	}
	if len(listed) > 0 {
		var stale []string
		for _, g := range goneList {
			if !epochs[epoch(g.id)] {
				stale = append(stale, g.id)
			}
		}
		if len(stale) > 0 {
			// The records of the old numbering can never be matched again:
			// drop them (deleting nothing), so the next run mirrors against
			// the records this run makes for the new numbering.
			if !e.opt.DryRun {
				if err := e.ckpt.Forget(fs.Name, stale, nil); err != nil {
					return fmt.Errorf("checkpoint: %w", err)
				}
			}
			return refuse(fmt.Sprintf("the folder's IDs changed (UIDVALIDITY %s is gone): its messages cannot be matched with those recorded; the next run mirrors again", epoch(stale[0])))
		}
	}
	if frac := float64(len(goneList)) / float64(recorded); frac > e.opt.MaxDeleteFraction && !e.opt.ForceDeletes {
		return refuse(fmt.Sprintf("%d of the %d recorded messages (%.0f%%) are gone from the source, more than max_delete_fraction %.0f%%; check the source, then run with --force-deletes",
			len(goneList), recorded, 100*frac, 100*e.opt.MaxDeleteFraction))
	}
	var del []source.Message
	var srcIDs []string
	dstIDs := map[string][]string{}
	for _, g := range goneList {
		srcIDs = append(srcIDs, g.id)
		if g.rec.DstID != "" && !kept[g.rec.DstFolder+"\x00"+g.rec.DstID] {
			del = append(del, source.Message{Folder: g.rec.DstFolder, ID: g.rec.DstID})
			dstIDs[g.rec.DstFolder] = append(dstIDs[g.rec.DstFolder], g.rec.DstID)
		}
	}
	e.mu.Lock()
	e.sum.MirrorDeleted += len(del)
	e.mu.Unlock()
	if e.opt.DryRun {
		return nil
	}
	for _, m := range del {
		e.opt.Log.Debug("mirror: deleting", "folder", m.Folder, "message", m.ID)
	}
	if len(del) > 0 {
		if err := e.dst.(sink.Deleter).Delete(ctx, del); err != nil {
			e.mu.Lock()
			e.sum.MirrorDeleted -= len(del)
			e.mu.Unlock()
			return refuse(fmt.Sprintf("delete at the destination: %v", err))
		}
	}
	// Rule 7 of package state: the records go after the copies.
	if err := e.ckpt.Forget(fs.Name, srcIDs, dstIDs); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// epoch is the part of a source ID that changes when a whole folder is
// renumbered: IMAP's UIDVALIDITY ("UIDVALIDITY/UID"); "" for other stores.
func epoch(id string) string {
	if i := strings.IndexByte(id, '/'); i > 0 {
		return id[:i]
	}
	return ""
}
