package plan

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
)

// planFolder lists one source folder and sends what must be copied to tasks,
// once gate has given it a writer's place. It returns an error only for
// what ends the whole run; a folder that cannot be read is recorded in the
// summary and skipped.
func (e *engine) planFolder(ctx context.Context, f source.Folder, to folderMap, tasks chan<- *task, gate *writeGate) error {
	e.opt.Progress.Listing(f.Name)
	fs := &FolderSummary{Name: f.Name, Destination: to.name, MappedBy: to.why}
	queued := 0
	defer func() { e.opt.Progress.Settled(max(0, fs.Messages-queued)) }()
	e.mu.Lock()
	e.sum.Folders = append(e.sum.Folders, fs)
	e.mu.Unlock()
	folderErr := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, source.ErrQuota) {
			// The source's allowance is spent, not this folder broken:
			// the run stops as at its budget, and the next one lists it.
			return fmt.Errorf("%w: folder %q: %w", ErrBudget, f.Name, err)
		}
		e.mu.Lock()
		fs.Error = err.Error()
		e.sum.Errors = append(e.sum.Errors, ErrorEntry{Folder: f.Name, Error: err.Error()})
		e.mu.Unlock()
		e.opt.Log.Error("folder skipped", "folder", f.Name, "error", err)
		return nil
	}

	ready := e.readyDst(ctx, f, fs)
	var msgs []source.Message
	err := e.retry(ctx, "list "+f.Name, func() error {
		msgs = msgs[:0]
		return e.src.List(ctx, f.Name, func(m source.Message) error {
			msgs = append(msgs, m)
			return nil
		})
	})
	<-ready.done
	if err != nil {
		return folderErr(fmt.Errorf("list: %w", err))
	}
	if ready.createErr != nil {
		return folderErr(fmt.Errorf("create destination folder %q: %w", fs.Destination, ready.createErr))
	}
	fs.Messages = len(msgs)
	if e.opt.MirrorDeletes {
		if err := e.mirror(ctx, fs, msgs); err != nil {
			return err
		}
	}
	if e.opt.Filter.Active() {
		kept := msgs[:0]
		for _, m := range msgs {
			if skip, _ := e.opt.Filter.skips(m); skip {
				e.filtered(fs, m)
				continue
			}
			kept = append(kept, m)
		}
		msgs = kept
	}
	// Messages the checkpoint knows need no key and no destination listing
	// (this is what makes a re-run fast), as long as the destination folder
	// is provably the one that received them, with nothing removed since.
	// Otherwise each record is checked against a listing, and a copy the
	// destination lost is made again.
	kept, idx, err := ready.kept, ready.idx, ready.indexErr
	if e.opt.MirrorDeletes {
		if kept = e.dstKept(ctx, fs.Destination); !kept {
			idx, err = e.index(ctx, fs.Destination)
		}
	}
	if err != nil {
		return folderErr(fmt.Errorf("list destination folder %q: %w", fs.Destination, err))
	}
	maybe, err := e.ckpt.Intents(f.Name) // DedupNone: copies that may have landed
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	unkeyed := map[string]bool{}
	recopy := map[string]bool{}
	same := newSameID()
	var pending []source.Message
	var flagUpdates []flagUpdate
	rf, err := e.ckpt.ReadFolder(f.Name)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	for i, m := range msgs {
		rec, ok, err := rf.Get(m.ID)
		if err != nil {
			rf.Close()
			return fmt.Errorf("read checkpoint: %w", err)
		}
		if !ok || rec.DstFolder != fs.Destination {
			if maybe[m.ID] == fs.Destination {
				unkeyed[m.ID] = true
			}
			pending = append(pending, m)
			continue
		}
		if !kept && !idx.holds(rec.DstID) {
			if rec.DstID == "" {
				// No ID to look for (IMAP without UIDPLUS): found again by
				// its key, or by content without one.
				unkeyed[m.ID] = true
			} else {
				recopy[m.ID] = true
			}
			pending = append(pending, m)
			continue
		}
		fs.AlreadyPresent++
		same.recorded(&msgs[i], rec)
		e.markDone(m, rec)
		if !source.SameFlags(rec.Flags, e.syncedFlags(m.Flags)) && rec.DstID != "" {
			flagUpdates = append(flagUpdates, flagUpdate{m: m, rec: rec})
		}
	}
	rf.Close()
	for _, u := range flagUpdates {
		if err := e.updateFlags(ctx, fs, u.m, u.rec); err != nil {
			return err
		}
	}
	if len(recopy) > 0 {
		e.opt.Log.Warn("the destination lost messages the checkpoint recorded as copied; copying them again", "folder", fs.Name, "destination", fs.Destination, "count", len(recopy))
	}
	if e.opt.Dedup == DedupNone {
		if pending, err = e.recoverUnkeyed(ctx, fs, pending, unkeyed); err != nil {
			return folderErr(err)
		}
	}
	if len(pending) == 0 {
		return nil
	}

	switch {
	case idx != nil:
	case e.opt.Dedup != DedupNone:
		if idx, err = e.index(ctx, fs.Destination); err != nil {
			return folderErr(fmt.Errorf("list destination folder %q: %w", fs.Destination, err))
		}
	default:
		idx = e.emptyIndex(fs.Destination)
	}
	if err := gate.take(ctx); err != nil {
		return err
	}
	// A source that reads faster in bulk is told what comes, a batch at a
	// time, before the batch goes to the workers. One that reads each
	// message to describe it (POP3) is told before it describes them, and
	// has them all by the time they go to the workers.
	pf, _ := e.src.(source.Prefetcher)
	if _, describes := e.src.(source.Describer); describes && pf != nil {
		pf.Prefetch(ctx, f.Name, pending)
		pf = nil
	}
	var batch []*task
	send := func(ts ...*task) error {
		for i, t := range ts {
			select {
			case tasks <- t:
			case <-ctx.Done():
				for _, t := range ts[i:] {
					e.opt.Progress.Finished(max(t.m.Size, 0))
				}
				return ctx.Err()
			}
		}
		return nil
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		msgs := make([]source.Message, len(batch))
		for i, t := range batch {
			msgs[i] = t.m
		}
		pf.Prefetch(ctx, f.Name, msgs)
		err := send(batch...)
		batch = batch[:0]
		return err
	}
	for i := range pending {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m := pending[i]
		if d, ok := e.src.(source.Describer); ok {
			if err := d.Describe(ctx, &m); errors.Is(err, source.ErrMessageNotFound) {
				e.vanished(fs, m, err)
				continue
			} else if err != nil {
				e.fail(fs, m, fmt.Errorf("read header: %w", err))
				continue
			}
			if skip, _ := e.opt.Filter.skips(m); skip {
				e.filtered(fs, m)
				continue
			}
		}
		key, keys, err := e.sourceKey(ctx, &m)
		if errors.Is(err, source.ErrMessageNotFound) {
			e.vanished(fs, m, err)
			continue
		}
		if err != nil {
			e.fail(fs, m, fmt.Errorf("read header: %w", err))
			continue
		}
		pending[i] = m // as described and keyed, for refine's later comparisons
		if key, err = e.refine(ctx, same, fs, idx, &pending[i], key); err != nil {
			e.fail(fs, m, fmt.Errorf("read: %w", err))
			continue
		}
		if !e.needsCopy(ctx, fs, idx, m, key) {
			continue
		}
		t := &task{m: m, fs: fs, dstFolder: fs.Destination, key: key, dstKeys: keys, recopy: recopy[m.ID]}
		e.mu.Lock()
		idx.inflight[key] = t
		e.mu.Unlock()
		if e.opt.DryRun {
			e.done(t, "", max(m.Size, 0))
			continue
		}
		if v := e.takeBudget(max(m.Size, 0)); v != budgetFits {
			e.mu.Lock()
			delete(idx.inflight, key)
			e.mu.Unlock()
			if v == budgetNever {
				e.fail(fs, m, fmt.Errorf("%d bytes: %w", m.Size, ErrOverBudget))
				continue
			}
			if err := flush(); err != nil {
				return err
			}
			return ErrBudget
		}
		if w, ok := e.dst.(sink.Warmer); ok && queued == 0 {
			w.Warm(ctx, fs.Destination) // while the source reads the first
		}
		e.opt.Progress.Queued(max(m.Size, 0))
		queued++
		if pf == nil {
			if err := send(t); err != nil {
				return err
			}
			continue
		}
		if batch = append(batch, t); len(batch) >= prefetchBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// prefetchBatch is how many copies a source.Prefetcher hears of at once:
// enough that it reads in long runs, few enough that copying starts at
// once.
const prefetchBatch = 512
