package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
)

// syncedFlags are the flags carried to the destination on a re-run. In a
// move, \Deleted is the move's own mark (a run killed between flagging and
// expunging leaves it): it must not travel to the copies.
func (e *engine) syncedFlags(flags []string) []string {
	if !e.opt.DeleteAfterCopy || !slices.Contains(flags, source.FlagDeleted) {
		return flags
	}
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == source.FlagDeleted })
}

type flagUpdate struct {
	m   source.Message
	rec state.Record
}

func (e *engine) updateFlags(ctx context.Context, fs *FolderSummary, m source.Message, rec state.Record) error {
	fsetter, ok := e.dst.(sink.FlagSetter)
	if !ok && !e.opt.DryRun {
		return nil
	}
	e.mu.Lock()
	fs.FlagsUpdated++
	e.mu.Unlock()
	if e.opt.DryRun {
		return nil
	}
	flags := e.syncedFlags(m.Flags)
	if err := e.retry(ctx, "set flags in "+rec.DstFolder, func() error {
		return fsetter.SetFlags(ctx, rec.DstFolder, rec.DstID, flags)
	}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, source.ErrMessageNotFound) {
			// The copy was removed at the destination: keep the old
			// record, so we do not copy it back behind the user's back.
			e.opt.Log.Warn("destination copy gone; flags not updated", "folder", fs.Name, "message", describe(m))
			return nil
		}
		e.fail(fs, m, fmt.Errorf("set flags: %w", err))
		return nil
	}
	rec.Flags = flags
	e.record(m, rec, nil)
	return nil
}
