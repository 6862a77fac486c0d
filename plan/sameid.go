package plan

import (
	"context"
	"strings"

	"github.com/mailferry/mailferry/source"
	"github.com/mailferry/mailferry/state"
)

// Message-ID matching is there to recognise a message already at the
// destination (a re-run, an earlier copy by another tool that added a
// header); it must not make two different messages of one source folder
// one. sameID finds, among the messages of one source folder, those that
// share a Message-ID with one seen before (pending or already recorded);
// only for those is the content read. The same content is the same
// message (a duplicate); another content is another message, keyed by
// Message-ID and content and matched one to one against the destination's
// copies with that Message-ID.
type sameID struct {
	first   map[string]*source.Message // Message-ID key -> first message with it, in the folder's listing
	content map[string]string          // source ID -> content key, read on demand
	claimed map[string]bool            // destination IDs matched by a message of this folder
	byID    map[string]source.Message  // destination listing by ID, made on demand
}

func newSameID() *sameID {
	return &sameID{first: map[string]*source.Message{}, content: map[string]string{}, claimed: map[string]bool{}}
}

// baseKey is the Message-ID key a refined key was made from.
func baseKey(key string) string {
	base, _, _ := strings.Cut(key, "\x00")
	return base
}

// recorded notes a message of the folder the checkpoint has a record of.
// m points into the folder's listing, which outlives c: a copy per
// message would be a tenth of a large folder's memory.
func (c *sameID) recorded(m *source.Message, rec state.Record) {
	base := baseKey(rec.Key)
	if !strings.HasPrefix(base, msgIDPrefix) || base == msgIDPrefix {
		return
	}
	if _, ok := c.first[base]; !ok {
		c.first[base] = m
	}
	if rec.DstID != "" {
		c.claimed[rec.DstID] = true
	}
}

// refine returns the key m is copied or matched under: key itself, unless
// another message of the folder with the same Message-ID but other
// content came first. m points into the folder's pending list, as in
// recorded.
func (e *engine) refine(ctx context.Context, c *sameID, fs *FolderSummary, idx *dstIndex, m *source.Message, key string) (string, error) {
	if e.opt.Dedup != DedupMessageID || !strings.HasPrefix(key, msgIDPrefix) || key == msgIDPrefix {
		return key, nil
	}
	first, seen := c.first[key]
	if !seen {
		c.first[key] = m
		return key, nil
	}
	mine, err := c.contentOf(ctx, e, e.src, *m)
	if err != nil {
		return "", err
	}
	theirs, err := c.contentOf(ctx, e, e.src, *first)
	if err != nil {
		return "", err
	}
	if mine == theirs {
		return key, nil // the same message twice: a duplicate
	}
	rk := key + "\x00" + mine
	e.mu.Lock()
	_, present := idx.present[rk]
	_, inflight := idx.inflight[rk]
	e.mu.Unlock()
	if present || inflight {
		return rk, nil
	}
	e.mu.Lock()
	fs.SameMessageID++
	e.mu.Unlock()
	e.opt.Log.Info("another message with the same Message-ID and other content; copied as a message of its own", "folder", fs.Name, "message", describe(*m))
	id, err := e.matchSameID(ctx, c, idx, key, mine)
	if err != nil {
		return "", err
	}
	if id != "" {
		c.claimed[id] = true
		e.mu.Lock()
		idx.present[rk] = presentEntry{id: id}
		e.mu.Unlock()
	}
	return rk, nil
}

// matchSameID picks the destination copy for a message whose Message-ID
// key another message of the folder has too: one with that key that no
// message of the folder has matched, the same content first.
func (e *engine) matchSameID(ctx context.Context, c *sameID, idx *dstIndex, key, content string) (string, error) {
	e.mu.Lock()
	candidates := append([]string(nil), idx.all[key]...)
	taken := idx.present[key].id // matched by the first message with the key
	if c.byID == nil {
		c.byID = make(map[string]source.Message, len(idx.listed))
		for _, m := range idx.listed {
			c.byID[m.ID] = m
		}
	}
	e.mu.Unlock()
	fallback := ""
	for _, id := range candidates {
		if id == taken || c.claimed[id] {
			continue
		}
		k, err := c.contentOf(ctx, e, e.dst, c.byID[id])
		if err != nil {
			return "", err
		}
		if k == content {
			return id, nil
		}
		if fallback == "" {
			fallback = id // a copy another tool changed (an added header)
		}
	}
	return fallback, nil
}

func (c *sameID) contentOf(ctx context.Context, e *engine, s source.Source, m source.Message) (string, error) {
	k := m.Folder + "\x00" + m.ID
	if v, ok := c.content[k]; ok {
		return v, nil
	}
	v, err := e.contentKey(ctx, s, m)
	if err == nil {
		c.content[k] = v
	}
	return v, err
}
