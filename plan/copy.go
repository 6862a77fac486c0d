package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
)

// copy runs in a worker: it streams one message from source to sink and
// records it.
func (e *engine) copy(ctx context.Context, stop context.CancelCauseFunc, t *task) {
	defer e.opt.Progress.Finished(max(t.m.Size, 0))
	if ctx.Err() != nil {
		return
	}
	var id string
	var n int64
	var last error
	err := e.retryEach(ctx, func(again bool) error {
		if again {
			// The failed attempt may have stored the message and lost only
			// the server's answer with the connection: look before writing
			// again, or a retry would make a duplicate.
			fid, found, rerr := e.recheck(ctx, t)
			if rerr != nil {
				// Still the failure being retried, the look aside.
				last = fmt.Errorf("%w (and checking the destination: %v)", last, rerr)
				return last
			}
			if found {
				id, n = fid, max(t.m.Size, 0)
				return nil
			}
		}
		id, n, last = e.put(ctx, t)
		return last
	}, "folder", t.fs.Name, "message", describe(t.m))
	switch {
	case err == nil:
		e.done(t, id, n)
		return
	case ctx.Err() != nil:
		return // interrupted: the message is not at the destination, nor recorded
	case errors.Is(err, source.ErrMessageNotFound):
		e.vanished(t.fs, t.m, err)
	case errors.Is(err, sink.ErrStop):
		e.fail(t.fs, t.m, err)
		stop(fmt.Errorf("folder %q: %w", t.dstFolder, err))
		return
	case errors.Is(err, source.ErrQuota):
		// Not this message's failure: the source's allowance for the day
		// is spent. The run stops as at its own byte budget; the next one
		// copies this message and the rest.
		stop(fmt.Errorf("%w: %w", ErrBudget, err))
		return
	default:
		e.fail(t.fs, t.m, err)
	}
	// The copy failed: the first duplicate waiting on it gets its own
	// chance, so no message is lost to another's failure.
	e.mu.Lock()
	idx := e.idx[t.dstFolder]
	delete(idx.inflight, t.key)
	var next *task
	if len(t.followers) > 0 {
		next = &task{m: t.followers[0], fs: t.fs, dstFolder: t.dstFolder, key: t.key, dstKeys: t.dstKeys, followers: t.followers[1:]}
		idx.inflight[t.key] = next
	}
	e.mu.Unlock()
	if next != nil {
		e.copy(ctx, stop, next)
	}
}

// recheck lists t's destination folder again and reports whether a message
// with t's key has appeared. With DedupNone the key is the content hash,
// matched against the new messages that no record names and no copy of
// this run claimed (claim).
func (e *engine) recheck(ctx context.Context, t *task) (string, bool, error) {
	want := t.key
	var recorded map[string]bool
	if e.opt.Dedup == DedupNone {
		e.noneMu.Lock() // one recheck at a time: each claims what it finds
		defer e.noneMu.Unlock()
		var err error
		if want, err = e.contentKey(ctx, e.src, t.m); err != nil {
			return "", false, err
		}
		if recorded, err = e.ckpt.RecordedDstIDs(t.dstFolder); err != nil {
			return "", false, err
		}
	}
	e.mu.Lock()
	known := e.idx[t.dstFolder].flags
	seen := make(map[string]bool, len(known))
	for id := range known {
		seen[id] = true
	}
	e.mu.Unlock()
	var fresh []source.Message
	err := e.dst.List(ctx, t.dstFolder, func(m source.Message) error {
		if !seen[m.ID] {
			fresh = append(fresh, m)
		}
		return nil
	})
	if errors.Is(err, source.ErrFolderNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	for _, m := range fresh {
		if recorded[m.ID] || (recorded != nil && e.claimed(t.dstFolder, m.ID)) {
			continue
		}
		var keys []string
		var err error
		if recorded != nil {
			var k string
			k, err = e.contentKey(ctx, e.dst, m)
			keys = []string{k}
		} else {
			keys, err = e.destinationKeys(ctx, m)
		}
		if errors.Is(err, source.ErrMessageNotFound) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		if slices.Contains(keys, want) && (recorded == nil || e.claim(t.dstFolder, m.ID)) {
			return m.ID, true, nil
		}
	}
	return "", false, nil
}

// put copies one message and returns the bytes that crossed: a source may
// not know sizes exactly (POP3), so the count comes from the copy itself.
func (e *engine) put(ctx context.Context, t *task) (string, int64, error) {
	if err := e.waitHold(ctx); err != nil {
		return "", 0, err
	}
	if err := e.lim.message(ctx); err != nil {
		return "", 0, err
	}
	if e.opt.Dedup == DedupNone {
		// No key will find this copy if the run dies before it is
		// recorded: say durably that it is being made (rule 9).
		if err := e.ckpt.Intend(t.m.Folder, t.m.ID, t.dstFolder); err != nil {
			return "", 0, fmt.Errorf("%w: %v", sink.ErrStop, err)
		}
	}
	r, err := e.src.Open(ctx, t.m)
	if err != nil {
		return "", 0, fmt.Errorf("open: %w", err)
	}
	cr := &countingReader{r: e.lim.reader(ctx, r)}
	id, err := e.dst.Put(ctx, t.dstFolder, t.m, cr)
	if err == nil && e.opt.Dedup == DedupNone && id != "" && !e.claim(t.dstFolder, id) {
		// A retry's recheck took this very copy for another message with
		// the same content; that one is recorded with it, so this one
		// needs a copy of its own.
		e.opt.Log.Warn("copy claimed by an identical message; copying again", "folder", t.fs.Name, "message", describe(t.m))
		r.Close()
		return e.put(ctx, t)
	}
	e.holdAll(err) // at once, before other workers start more
	if cerr := r.Close(); err == nil && cerr != nil {
		// A source that notices a problem only at the end (a short body)
		// says so here; the sink has already stored it, which Put's size
		// check prevents for sources that declare sizes.
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("write to %q: %w", t.dstFolder, err)
	}
	return id, cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// done records a copied message (rule 1 of package state: only now) and
// the duplicates that waited on it.
func (e *engine) done(t *task, id string, size int64) {
	e.mu.Lock()
	idx := e.idx[t.dstFolder]
	delete(idx.inflight, t.key)
	if e.opt.Dedup != DedupNone {
		idx.present[t.key] = presentEntry{id: id, thisRun: true}
	}
	idx.flags[id] = t.m.Flags
	t.fs.Copied++
	if t.recopy {
		t.fs.Recopied++
	}
	t.fs.DuplicatesSkipped += len(t.followers)
	t.fs.Bytes += size
	e.mu.Unlock()
	e.opt.Log.Debug("copied", "folder", t.fs.Name, "message", describe(t.m), "bytes", size)
	if e.opt.DryRun {
		return
	}
	e.record(t.m, state.Record{DstFolder: t.dstFolder, DstID: id, Key: t.key, Flags: t.m.Flags, Copied: true}, t.dstKeys)
	for _, f := range t.followers {
		e.record(f, state.Record{DstFolder: t.dstFolder, DstID: id, Key: t.key, Flags: f.Flags}, nil)
	}
}

// markDone notes a message recorded as at the destination. A move may
// delete it at the source only if the destination holds these very bytes
// (line endings aside): its own bytes were copied, or it matched by content
// hash. A message matched by Message-ID alone may be another message with
// the same ID, so it is kept.
func (e *engine) markDone(m source.Message, rec state.Record) {
	if !e.opt.DeleteAfterCopy {
		// Only a move needs the list; a copy of 500,000 messages would
		// hold them all to the end for nothing (a fifth of its heap).
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := m.Folder + "\x00" + m.ID
	if e.doneSeen[k] {
		return
	}
	e.doneSeen[k] = true
	if rec.Copied || strings.HasPrefix(rec.Key, contentPrefix) {
		e.doneMsgs = append(e.doneMsgs, m)
	} else {
		e.sum.KeptAtSource++
	}
}

func (e *engine) record(m source.Message, rec state.Record, dstKeys []string) {
	e.markDone(m, rec)
	if err := e.ckpt.Add(state.Entry{SrcFolder: m.Folder, SrcID: m.ID, Record: rec, DstKeys: dstKeys}); err != nil {
		// A checkpoint that cannot be written costs speed on the next run,
		// not correctness; say so once per message rather than stopping.
		e.opt.Log.Error("checkpoint", "error", err)
	}
}

func (e *engine) fail(fs *FolderSummary, m source.Message, err error) {
	e.mu.Lock()
	fs.Failed++
	e.sum.Errors = append(e.sum.Errors, ErrorEntry{Folder: fs.Name, Message: describe(m), Error: err.Error()})
	e.mu.Unlock()
	e.opt.Log.Error("message not copied", "folder", fs.Name, "message", describe(m), "error", err)
}

// warn records what a sink said of a message it stored with less than
// it carried.
func (e *engine) warn(folder string, m source.Message, warning string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sum.Warnings = append(e.sum.Warnings, ErrorEntry{Folder: folder, Message: describe(m), Error: warning})
}

func (e *engine) filtered(fs *FolderSummary, m source.Message) {
	e.mu.Lock()
	fs.Filtered++
	e.mu.Unlock()
	e.opt.Log.Debug("filtered out", "folder", fs.Name, "message", describe(m), "size", m.Size, "date", m.Date)
}

func (e *engine) vanished(fs *FolderSummary, m source.Message, err error) {
	e.mu.Lock()
	e.sum.Vanished++
	e.mu.Unlock()
	e.opt.Log.Warn("message deleted at the source during the run", "folder", fs.Name, "message", describe(m))
}

// describe names a message for errors and logs.
func describe(m source.Message) string {
	if m.MessageIDKnown && m.MessageID != "" {
		return fmt.Sprintf("%s (Message-ID %s)", m.ID, m.MessageID)
	}
	return m.ID
}
