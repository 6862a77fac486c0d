package plan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailferry/mailferry/sink"
	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
)

// dstIndex is what one destination folder holds, by dedup key.
type dstIndex struct {
	present  map[string]presentEntry
	inflight map[string]*task
	flags    map[string][]string // destination ID -> flags, from the listing
	all      map[string][]string // key -> every destination ID with it (sameid.go)
	listed   []source.Message    // the listing, once isListed
	isListed bool
}

type presentEntry struct {
	id      string
	thisRun bool
}

// needsCopy decides what to do with a pending source message given the
// destination index: true when it must be copied; otherwise it has been
// accounted for (already there, or waiting on a copy of the same key).
func (e *engine) needsCopy(ctx context.Context, fs *FolderSummary, idx *dstIndex, m source.Message, key string) bool {
	e.mu.Lock()
	if t, ok := idx.inflight[key]; ok {
		// Same key as a message being copied now: it waits on that copy,
		// and is copied itself if that one fails.
		t.followers = append(t.followers, m)
		e.mu.Unlock()
		return false
	}
	p, ok := idx.present[key]
	var dstFlags []string
	if ok {
		dstFlags = idx.flags[p.id]
		if p.thisRun {
			fs.DuplicatesSkipped++
		} else {
			fs.AlreadyPresent++
		}
	}
	e.mu.Unlock()
	if !ok {
		return true
	}
	e.opt.Log.Debug("already at destination", "folder", fs.Name, "message", describe(m), "key", key)
	if e.opt.DryRun {
		return false
	}
	rec := state.Record{DstFolder: fs.Destination, DstID: p.id, Key: key, Flags: m.Flags}
	if !p.thisRun && !source.SameFlags(dstFlags, m.Flags) {
		// Found by listing: bring its flags in line with the source, as a
		// re-run would for a message we copied.
		rec.Flags = dstFlags
		e.updateFlags(ctx, fs, m, rec)
		return false
	}
	e.record(m, rec, nil)
	return false
}

func (e *engine) emptyIndex(dstFolder string) *dstIndex {
	e.mu.Lock()
	defer e.mu.Unlock()
	idx := e.idx[dstFolder]
	if idx == nil {
		idx = &dstIndex{present: map[string]presentEntry{}, inflight: map[string]*task{}, flags: map[string][]string{}, all: map[string][]string{}}
		e.idx[dstFolder] = idx
	}
	return idx
}

// dropIndex forgets dstFolder's index once no folder is left to copy
// there, and tells a destination that keeps memory per folder.
func (e *engine) dropIndex(dstFolder string) {
	e.mu.Lock()
	delete(e.idx, dstFolder)
	e.mu.Unlock()
	if r, ok := e.dst.(sink.Releaser); ok {
		r.Release(dstFolder)
	}
}

// index lists dstFolder once per run and keys what it holds, reading from
// the destination only messages the checkpoint has no keys for.
func (e *engine) index(ctx context.Context, dstFolder string) (*dstIndex, error) {
	idx := e.emptyIndex(dstFolder)
	e.mu.Lock()
	listed := idx.isListed
	e.mu.Unlock()
	if listed {
		return idx, nil
	}
	if wait := time.Until(e.graceUntil); wait > 0 {
		e.opt.Log.Warn("the previous run was killed; waiting for writes it left in flight to land", "wait", wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	known, err := e.ckpt.DstKeys(dstFolder)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var msgs []source.Message
	err = e.retry(ctx, "list destination "+dstFolder, func() error {
		msgs = msgs[:0]
		return e.dst.List(ctx, dstFolder, func(m source.Message) error {
			msgs = append(msgs, m)
			return nil
		})
	})
	if err != nil && !errors.Is(err, source.ErrFolderNotFound) { // not found: nothing there yet
		return nil, err
	}
	e.mu.Lock()
	idx.isListed = true
	idx.listed = msgs
	for _, m := range msgs {
		idx.flags[m.ID] = m.Flags
	}
	e.mu.Unlock()
	for _, m := range msgs {
		if e.opt.Dedup == DedupNone {
			continue // no keys to match on
		}
		keys := known[m.ID]
		if !e.hasNeededKeys(keys) {
			keys, err = e.destinationKeys(ctx, m)
			if errors.Is(err, source.ErrMessageNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read %q: %w", m.ID, err)
			}
			if !e.opt.DryRun {
				e.ckpt.AddDstKeys(dstFolder, m.ID, keys)
			}
		}
		e.mu.Lock()
		for _, k := range keys {
			if k != msgIDPrefix {
				if _, dup := idx.present[k]; !dup {
					idx.present[k] = presentEntry{id: m.ID}
				}
				idx.all[k] = append(idx.all[k], m.ID)
			}
		}
		idx.flags[m.ID] = m.Flags
		e.mu.Unlock()
	}
	return idx, nil
}

// holds reports whether the listing showed the destination message id.
func (idx *dstIndex) holds(id string) bool {
	_, ok := idx.flags[id]
	return ok && id != ""
}

// hasNeededKeys reports whether keys let the current dedup mode match a
// destination message without reading it.
func (e *engine) hasNeededKeys(keys []string) bool {
	var m, mNone, c bool
	for _, k := range keys {
		switch {
		case k == msgIDPrefix:
			mNone = true
		case strings.HasPrefix(k, msgIDPrefix):
			m = true
		case strings.HasPrefix(k, contentPrefix):
			c = true
		}
	}
	if e.opt.Dedup == DedupContent {
		return c
	}
	return m || (mNone && c)
}

func (e *engine) destinationKeys(ctx context.Context, m source.Message) ([]string, error) {
	if e.opt.Dedup == DedupContent {
		c, err := e.contentKey(ctx, e.dst, m)
		if err != nil {
			return nil, err
		}
		return []string{c}, nil
	}
	return e.messageIDKeys(ctx, e.dst, &m)
}
