package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
)

// The checkpoint says which source messages are at the destination; the
// destination decides. Before a run believes the records of a destination
// folder, it compares the folder's state now with the state recorded after
// the last run's writes (package state, rule 8): a folder that is the same
// one with nothing removed since still holds every recorded copy. Any other
// folder (wiped, emptied, made again, a new UIDVALIDITY, an account made
// anew, a state never recorded) is listed, and every record whose copy is
// not there any more is copied again.

// dstKept reports whether dstFolder's records can be believed without a
// listing. It is decided once per run, before the run writes there.
func (e *engine) dstKept(ctx context.Context, dstFolder string) bool {
	e.mu.Lock()
	kept, ok := e.kept[dstFolder]
	e.mu.Unlock()
	if ok {
		return kept
	}
	kept = e.checkDst(ctx, dstFolder)
	e.mu.Lock()
	e.kept[dstFolder] = kept
	e.mu.Unlock()
	return kept
}

func (e *engine) checkDst(ctx context.Context, dstFolder string) bool {
	fst, ok := e.dst.(sink.FolderStater)
	if !ok {
		return false
	}
	raw, err := e.ckpt.DstState(dstFolder)
	if err != nil || raw == nil {
		return false
	}
	var old sink.FolderState
	if json.Unmarshal(raw, &old) != nil {
		return false
	}
	var now sink.FolderState
	if err := e.retry(ctx, "check destination folder "+dstFolder, func() (err error) {
		now, err = fst.FolderState(ctx, dstFolder)
		return err
	}); err != nil {
		e.opt.Log.Warn("cannot check the destination folder; listing it", "folder", dstFolder, "error", err)
		return false
	}
	if !old.Kept(now) {
		e.opt.Log.Info("destination folder changed since the last run; checking what it still holds", "folder", dstFolder)
		return false
	}
	return true
}

// saveDstState records dstFolder's state after this run's writes there,
// once the records are durable (rule 8: SetDstState flushes first).
func (e *engine) saveDstState(ctx context.Context, dstFolder string) error {
	fst, ok := e.dst.(sink.FolderStater)
	if !ok || e.opt.DryRun || ctx.Err() != nil {
		return nil
	}
	now, err := fst.FolderState(ctx, dstFolder)
	if err != nil || now.Identity == "" {
		return nil // not fatal: the next run lists the folder
	}
	raw, err := json.Marshal(now)
	if err != nil {
		return err
	}
	if err := e.ckpt.SetDstState(dstFolder, raw); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// recoverUnkeyed finds, for DedupNone, the copies a killed run wrote but
// did not record. Without dedup keys nothing else would: maybe names the
// pending messages whose copy may have arrived (a write intent is
// outstanding, rule 9, or a record names no destination ID to look for).
// Each is matched by content hash, one to one, against the messages of the
// destination folder that no record accounts for; a match is recorded as
// present, the rest are returned to be copied.
func (e *engine) recoverUnkeyed(ctx context.Context, fs *FolderSummary, pending []source.Message, maybe map[string]bool) ([]source.Message, error) {
	if len(maybe) == 0 {
		return pending, nil
	}
	idx, err := e.index(ctx, fs.Destination)
	if err != nil {
		return nil, fmt.Errorf("list destination folder %q: %w", fs.Destination, err)
	}
	byKey, err := e.unaccounted(ctx, fs.Destination, idx)
	if err != nil {
		return nil, err
	}
	rest := pending[:0]
	for _, m := range pending {
		if !maybe[m.ID] {
			rest = append(rest, m)
			continue
		}
		k, err := e.contentKey(ctx, e.src, m)
		if errors.Is(err, source.ErrMessageNotFound) {
			e.vanished(fs, m, err)
			continue
		}
		if err != nil {
			e.fail(fs, m, fmt.Errorf("read: %w", err))
			continue
		}
		ids := byKey[k]
		if len(ids) == 0 || !e.claim(fs.Destination, ids[0]) {
			rest = append(rest, m)
			continue
		}
		byKey[k] = ids[1:]
		e.mu.Lock()
		fs.AlreadyPresent++
		dstFlags := idx.flags[ids[0]]
		e.mu.Unlock()
		e.opt.Log.Info("found the copy an interrupted run wrote", "folder", fs.Name, "message", describe(m))
		rec := state.Record{DstFolder: fs.Destination, DstID: ids[0], Key: sourceKeyNone(m), Flags: dstFlags, Copied: true}
		if e.opt.DryRun {
			continue
		}
		if !source.SameFlags(dstFlags, m.Flags) {
			if err := e.updateFlags(ctx, fs, m, rec); err != nil {
				return nil, err
			}
			continue
		}
		e.record(m, rec, nil)
	}
	return rest, nil
}

// unaccounted hashes the messages of dstFolder that no record names and
// no copy of this run wrote, by content key.
func (e *engine) unaccounted(ctx context.Context, dstFolder string, idx *dstIndex) (map[string][]string, error) {
	recorded, err := e.ckpt.RecordedDstIDs(dstFolder)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	e.mu.Lock()
	listed := slices.Clone(idx.listed)
	e.mu.Unlock()
	byKey := map[string][]string{}
	for _, m := range listed {
		if recorded[m.ID] || e.claimed(dstFolder, m.ID) {
			continue
		}
		k, err := e.contentKey(ctx, e.dst, m)
		if errors.Is(err, source.ErrMessageNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %q in %q: %w", m.ID, dstFolder, err)
		}
		byKey[k] = append(byKey[k], m.ID)
	}
	return byKey, nil
}

// claim marks a destination message as this run's to account for; false
// if it already was (a copy of this run, or matched before).
func (e *engine) claim(dstFolder, id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := dstFolder + "\x00" + id
	if e.taken[k] {
		return false
	}
	e.taken[k] = true
	return true
}

func (e *engine) claimed(dstFolder, id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.taken[dstFolder+"\x00"+id]
}
